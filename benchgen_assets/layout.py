"""Where the scenario generator keeps things under ``datasets/benchmarks/``.

  requests/<id>.json                 the GenerationRequest saved by the CLI / UI
  <id>/plan.json                     ScenarioPlan + the planner step
  <id>/script.py, <id>/attempts/     the script run on every variant, every attempt that led to it
  <id>/<variant>/                    a valid variant: scene.xml, meshes/, validation.json, preview.png
  <id>/scenario.json                 ScenarioValidation: one manifest row + report per variant
  staging/<id>/<variant>/            a rejected variant, with its validation.json
  manifest.parquet, traces.parquet   the tables over all scenarios

and, beside ``benchmarks/``, the task library the coder draws worked examples from:

  datasets/library/<sha16>/          script.py + entry.json (plan, task, oracle results, scenarios)
"""

from __future__ import annotations

import re
from pathlib import Path

from resources.paths import datasets_root

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
RESERVED = {"requests", "staging", "work"}


def check_scenario_id(scenario_id: str) -> str:
    if not _ID.match(scenario_id) or scenario_id in RESERVED:
        raise ValueError(f"invalid scenario id {scenario_id!r}: use letters, digits, '_', '-', '.' "
                         f"(not {sorted(RESERVED)})")
    return scenario_id


def benchmarks_root() -> Path:
    return datasets_root() / "benchmarks"


def request_path(scenario_id: str) -> Path:
    return benchmarks_root() / "requests" / f"{check_scenario_id(scenario_id)}.json"


def scenario_dir(scenario_id: str) -> Path:
    return benchmarks_root() / check_scenario_id(scenario_id)


def staging_dir(scenario_id: str) -> Path:
    return benchmarks_root() / "staging" / check_scenario_id(scenario_id)


def work_dir(scenario_id: str) -> Path:
    """Scratch space of a partition's runs (sandbox outputs before export)."""
    return benchmarks_root() / "work" / check_scenario_id(scenario_id)


def manifest_path() -> Path:
    return benchmarks_root() / "manifest.parquet"


def traces_path() -> Path:
    return benchmarks_root() / "traces.parquet"


def llm_traces_root() -> Path:
    return datasets_root() / "traces" / "llm"


def library_root() -> Path:
    """The task library: every accepted scenario script, deduplicated by its sha256."""
    return datasets_root() / "library"
