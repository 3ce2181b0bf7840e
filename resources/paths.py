"""Where the project keeps its inputs and outputs."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def datasets_root() -> Path:
    """Root of all datasets; ``BENCHGEN_DATASETS`` moves it (tests point it at a temp dir)."""
    return Path(os.environ.get("BENCHGEN_DATASETS", PROJECT_ROOT / "datasets")).resolve()


def default_dagster_home() -> Path:
    return PROJECT_ROOT / "dagster_home"


def ensure_dagster_home() -> Path:
    """Point DAGSTER_HOME at the project-local instance unless the user chose another."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(default_dagster_home())))
    home.mkdir(parents=True, exist_ok=True)
    return home
