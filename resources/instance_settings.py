"""The environment settings of the project instance's storage and compute logs, and the ones the CLIs
choose for their runs. No Dagster import: a CLI sets them before it forks its workers, which inherit them.
"""

from __future__ import annotations

import os
from typing import Optional

SQLITE_SYNC_ENV = "BENCHGEN_SQLITE_SYNC"
SYNC_MODES = ("OFF", "NORMAL", "FULL")
# Dagster hands a run's planned events, and a range step's materializations, to the storage as one
# batch only when this is set (Postgres writes a batch at once; so does resources/dagster_storage.py).
EVENT_BATCH_ENV, EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE", "1000"
ECHO_ENV = "BENCHGEN_ECHO_STEP_OUTPUT"


def sqlite_synchronous() -> Optional[str]:
    """``PRAGMA synchronous`` from ``$BENCHGEN_SQLITE_SYNC``; None: unset, SQLite's default."""
    value = os.environ.get(SQLITE_SYNC_ENV, "").strip().upper()
    if not value:
        return None
    if value not in SYNC_MODES:
        raise ValueError(f"${SQLITE_SYNC_ENV} must be off, normal or full, not {value.lower()!r}")
    return value


def echo_step_output() -> bool:
    """``$BENCHGEN_ECHO_STEP_OUTPUT``: echo a step's captured output to the terminal (default), or not."""
    return os.environ.get(ECHO_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def use_cli_instance_settings() -> None:
    """For the CLIs' runs (and the workers they start, which inherit the environment): SQLite commits
    without fsync unless ``$BENCHGEN_SQLITE_SYNC`` says otherwise (checked here, before any work),
    Dagster's event batches on (``$DAGSTER_EVENT_BATCH_SIZE``, also set by scripts/env.sh), and step
    output captured without its echo to the terminal (``resources.dagster_compute_logs``)."""
    os.environ.setdefault(SQLITE_SYNC_ENV, "off")
    os.environ.setdefault(EVENT_BATCH_ENV, EVENT_BATCH_SIZE)
    os.environ.setdefault(ECHO_ENV, "0")
    try:
        sqlite_synchronous()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
