"""Strict validation of one built variant: geometry → MJCF composition → schema → compile → stability
→ solvability (every hinge/slide sweeps its whole range without running into the fixed scene, the
task does not start solved, and its scripted oracle reaches the goal in time).

Stages run in order and stop at the first failure (a later stage cannot mean anything once an
earlier one failed); every stage that ran is reported with its message and time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import mujoco

from benchgen_assets.records import BuildOutput, OracleReport, StageResult, TaskSpec, ValidationReport
from benchgen_assets.tasks import score_state

from .decompose import DecompositionError
from .joint_sweep import sweep_joints
from .mjcf import CompositionError, compose_mjcf
from .oracle import run_oracle
from .schema import mjcf_schema_errors
from .stability import stability_check

PASSIVE_SETTLE_S = 0.3  # "starts solved" is also checked after the scene settles this long untouched


def validate_variant(build: BuildOutput, out_dir: Path, *, scenario_id: str, variant_id: str, decompose: bool = True,
                     cache_dir: Path | None = None) -> ValidationReport:
    """Validate ``build``; writes ``out_dir/scene.xml`` and ``out_dir/meshes/`` on the way."""
    report = ValidationReport(scenario_id=scenario_id, variant_id=variant_id, seed=build.seed, scale=build.scale, passed=False)
    xml_path = Path(out_dir) / "scene.xml"
    compiled: list[mujoco.MjModel] = []  # the scene compiled once, for every simulation stage after compile

    def run(name: str, stage: Callable[[], str | None]) -> bool:
        """Run one stage: it returns None when it passes, else the failure message."""
        start = time.perf_counter()
        failure = stage()
        seconds = time.perf_counter() - start
        report.timings_s[name] = round(seconds, 4)
        report.stages.append(StageResult(name=name, passed=failure is None, message=failure or "ok", seconds=round(seconds, 4)))
        return failure is None

    def geometry() -> str | None:
        if not build.parts:
            return "the build has no parts"
        bad = [f"{p.name}: {', '.join(p.geometry.issues) or _geometry_flags(p.geometry)}" for p in build.parts if not p.geometry.ok]
        return "invalid geometry: " + "; ".join(bad) if bad else None

    def compose() -> str | None:
        try:
            compose_mjcf(build, Path(out_dir), decompose=decompose, cache_dir=cache_dir)
        except (CompositionError, DecompositionError) as exc:
            return str(exc)
        return None

    def schema() -> str | None:
        errors = mjcf_schema_errors(xml_path.read_text(encoding="utf-8"))
        return f"{len(errors)} schema error(s): " + "; ".join(errors[:20]) if errors else None

    def compile_model() -> str | None:
        try:
            compiled.append(mujoco.MjModel.from_xml_path(str(xml_path)))
        except ValueError as exc:  # MuJoCo's compiler errors
            return f"MuJoCo compile error: {exc}"
        return None

    def stability() -> str | None:
        result = stability_check(xml_path, model=compiled[0])
        report.max_velocity = result.max_velocity
        report.max_penetration_m = result.max_penetration_m
        report.warnings = result.warnings
        return None if result.passed else result.message

    def solvability() -> str | None:
        if build.task is None:
            return ("build() returned no Scene.task: a benchmark scene needs Task(instruction, goal=[predicates], "
                    "oracle=[steps that solve it], time_limit_s)")
        # (joint sweep) a part that jams on its way through its range is no fair task for a policy either
        sweep = sweep_joints(compiled[0])
        if not sweep.passed:
            return f"a hinged or sliding part cannot move through its whole joint range: {sweep.message()}"
        report.oracle, failure = solvability_check(xml_path, build.task, model=compiled[0])
        return failure

    report.passed = (run("geometry", geometry) and run("mjcf_compose", compose) and run("mjcf_schema", schema)
                     and run("mjcf_compile", compile_model) and run("stability", stability)
                     and run("solvability", solvability))
    return report


def solvability_check(xml_path: Path, task: TaskSpec,
                      model: mujoco.MjModel | None = None) -> tuple[OracleReport | None, str | None]:
    """(the oracle's report, None) when the task is sound; else the reason, naming predicates and metrics.
    ``model``: ``xml_path`` already compiled (it is not changed; the oracle compiles its own extended copy)."""
    model = model if model is not None else mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    if model.nkey > 0:
        mujoco.mj_resetDataKeyframe(model, data, 0)
    try:
        for i, moment in enumerate(("initial state", f"state after {PASSIVE_SETTLE_S:g} s untouched")):
            if i:
                mujoco.mj_step(model, data, int(round(PASSIVE_SETTLE_S / model.opt.timestep)))
            start = score_state(model, data, task)
            if start.success:
                return None, (f"the task starts solved: the goal already holds in the {moment} "
                              f"({'; '.join(f'{r.predicate}: {r.value:.4g} {r.unit}' for r in start.predicates)}); "
                              "move the parts or tighten the predicates so a policy has something to do")
        oracle = run_oracle(xml_path, task)
    except ValueError as exc:  # TaskError (a name the model lacks) and MuJoCo's compile errors
        return None, f"the task cannot be evaluated on this scene: {exc}"
    return oracle, None if oracle.solved else oracle.message


def _geometry_flags(geometry) -> str:
    flags = {"brep invalid": not geometry.brep_valid, "not manifold": not geometry.manifold,
             "not watertight": not geometry.watertight, "inconsistent winding": not geometry.winding_consistent,
             "self-intersecting": geometry.self_intersecting}
    return ", ".join(k for k, v in flags.items() if v)
