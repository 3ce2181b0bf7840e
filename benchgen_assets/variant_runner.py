"""Run a scenario script on its variants: sandbox build → strict validation → export or staging.

Plain Python (no Dagster). A variant that passes every stage is exported to
``datasets/benchmarks/<id>/<variant>/`` (scene.xml, meshes/ it references, task.json, cad/ = the
script's parts as STL in mm, build.json, validation.json); one that fails goes to ``staging/<id>/<variant>/`` with
its ValidationReport. Each variant directory is swapped in atomically (``replace_dir``).

The generation loop already built and validated the probe variant (v00) with the final script;
``validate_scenario`` takes that run over instead of repeating it (same code, seed and scale give
byte-identical files), found through the ``run.json`` that ``run_variant`` leaves in its work dir.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from benchgen_assets import layout
from benchgen_assets.records import (BuildOutput, SandboxError, ScenarioManifest, ScenarioPlan, ScenarioScript,
                                     ScenarioValidation, StageResult, ValidationReport, VariantOutcome, VariantSpec)
from resources.atomic import atomic_write_bytes, atomic_write_json, replace_dir

VALIDATION_FILE = "validation.json"
PREVIEW_FILE = "preview.png"
RUN_FILE = "run.json"  # in a variant's work dir: what run_variant did (not exported)


class SavedRun(BaseModel):
    """A variant run as ``run_variant`` left it in its work dir."""

    code_sha256: str
    report: ValidationReport
    build: Optional[BuildOutput]


@dataclass
class VariantRun:
    report: ValidationReport
    build: Optional[BuildOutput]
    files_dir: Path  # what the build and the validator wrote for this variant


def run_variant(code: str, scenario_id: str, variant: VariantSpec, work: Path) -> VariantRun:
    """Build ``variant`` in the sandbox and validate it; never raises for what the script does."""
    from benchgen_assets.physics import validate_variant
    from benchgen_assets.sandbox import run_build

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t0 = time.monotonic()
    # cad/: the parts as the script built them (mm, world frame); the validator writes the MJCF and
    # its own meshes/ (metres, body frames, convex pieces) next to it.
    built = run_build(code, variant.seed, variant.scale, work / "cad")
    build_s = round(time.monotonic() - t0, 3)
    if isinstance(built, SandboxError):
        stage = "geometry" if built.kind == "geometry" else "compile"
        stages = [StageResult(name="compile", passed=True, seconds=build_s)] if stage == "geometry" else []
        stages.append(StageResult(name=stage, passed=False, message=f"{built.kind}: {built.message}",
                                  seconds=0.0 if stage == "geometry" else build_s))
        report = ValidationReport(scenario_id=scenario_id, variant_id=variant.variant_id, seed=variant.seed,
                                  scale=variant.scale, passed=False, stages=stages, error=built,
                                  timings_s={"build": build_s})
        return VariantRun(report=report, build=None, files_dir=work)
    report = validate_variant(built, work, scenario_id=scenario_id, variant_id=variant.variant_id)
    if not any(s.name == "compile" for s in report.stages):
        report.stages.insert(0, StageResult(name="compile", passed=True, seconds=build_s))
    report.timings_s = {"build": build_s, **report.timings_s}
    saved = SavedRun(code_sha256=code_sha256(code), report=report, build=built)
    atomic_write_json(work / RUN_FILE, saved.model_dump(mode="json"))
    return VariantRun(report=report, build=built, files_dir=work)


def code_sha256(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _probe_run(script: ScenarioScript, variant: VariantSpec) -> Optional[VariantRun]:
    """The loop's passing run of ``script`` on ``variant``, if its files are still in the work dir.

    Only the very run recorded in the script's last attempt qualifies (equal report), so a work dir
    left over from an older run or older validator code is never taken for it."""
    final = script.attempts[-1].validation if script.attempts else None
    if (final is None or not final.passed or final.variant_id != variant.variant_id or final.seed != variant.seed
            or tuple(final.scale) != tuple(variant.scale)):
        return None
    for path in sorted(layout.work_dir(script.scenario_id).rglob(RUN_FILE)):
        saved = SavedRun.model_validate_json(path.read_text())
        if (saved.code_sha256 == script.code_sha256 and saved.report == final and saved.build is not None
                and (path.parent / "scene.xml").exists()):
            return VariantRun(report=saved.report, build=saved.build, files_dir=path.parent)
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rel(path: Path) -> str:
    return str(path.relative_to(layout.benchmarks_root().parent))


def _export(run: VariantRun, target: Path) -> None:
    def fill(tmp: Path) -> None:
        shutil.copytree(run.files_dir, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(RUN_FILE))
        atomic_write_json(tmp / VALIDATION_FILE, run.report.model_dump(mode="json"))
        if run.build is not None:  # pointing at where its STL files now live
            exported = run.build.model_copy(update={"out_dir": str(target / "cad")})
            atomic_write_json(tmp / "build.json", exported.model_dump(mode="json"))

    replace_dir(target, fill)


def _task_fields(run: VariantRun) -> dict:
    """The manifest's task columns: the goal as text and what the oracle reached."""
    task = run.build.task if run.build else None
    if task is None:
        return {}
    units = {p.name: "rad" if p.joint == "hinge" else "mm" for p in run.build.parts}
    oracle = run.report.oracle
    return {"instruction": task.instruction, "predicate": task.predicate_text(units), "time_limit_s": task.time_limit_s,
            "oracle_time_s": oracle.time_to_success_s if oracle else None,
            "success_metric": "; ".join(f"{p.value:.4g} {p.unit}" for p in oracle.final.predicates) if oracle else None}


def _manifest_row(run: VariantRun, variant: VariantSpec, plan: ScenarioPlan, script: ScenarioScript,
                  scenario_id: str, target: Path) -> ScenarioManifest:
    mjcf = target / "scene.xml"
    stls = sorted(target.rglob("*.stl"))
    return ScenarioManifest(
        scenario_id=scenario_id, variant_id=variant.variant_id,
        name=run.build.scene_name if run.build else plan.title, title=plan.title, tier=plan.tier,
        family=plan.family, parameters=run.build.parameters if run.build else {}, seed=variant.seed,
        scale=variant.scale, status="valid" if run.report.passed else "rejected", dir=_rel(target),
        mjcf_path=_rel(mjcf) if mjcf.exists() else None, stl_paths=[_rel(p) for p in stls],
        validation_path=_rel(target / VALIDATION_FILE), mjcf_sha256=_sha256(mjcf) if mjcf.exists() else None,
        stl_sha256=[_sha256(p) for p in stls], script_sha256=script.code_sha256, **_task_fields(run),
    )


def validate_scenario(scenario_id: str, plan: ScenarioPlan, script: ScenarioScript,
                      variants: list[VariantSpec]) -> ScenarioValidation:
    """Every variant built, validated and exported (valid) or staged (rejected); writes scenario.json."""
    scenario = layout.scenario_dir(scenario_id)
    staging = layout.staging_dir(scenario_id)
    outcomes = []
    for variant in variants:
        run = (_probe_run(script, variant)
               or run_variant(script.code, scenario_id, variant, layout.work_dir(scenario_id) / variant.variant_id))
        target, other = (scenario, staging) if run.report.passed else (staging, scenario)
        _export(run, target / variant.variant_id)
        shutil.rmtree(other / variant.variant_id, ignore_errors=True)  # a rerun may flip valid ↔ rejected
        outcomes.append(VariantOutcome(manifest=_manifest_row(run, variant, plan, script, scenario_id,
                                                              target / variant.variant_id), report=run.report))
    _remove_stale_variants(scenario_id, {v.variant_id for v in variants})
    result = ScenarioValidation(scenario_id=scenario_id, variants=outcomes)
    atomic_write_json(scenario / "scenario.json", result.model_dump(mode="json"))
    shutil.rmtree(layout.work_dir(scenario_id), ignore_errors=True)
    from benchgen_assets.authoring.library import add_accepted  # the task library: later coder prompts' examples
    add_accepted(plan, script, result)
    return result


def _remove_stale_variants(scenario_id: str, keep: set[str]) -> None:
    """Variants of an earlier run with more variants than this one would otherwise linger."""
    for root in (layout.scenario_dir(scenario_id), layout.staging_dir(scenario_id)):
        if root.is_dir():
            for d in root.iterdir():
                if d.is_dir() and d.name.startswith("v") and d.name[1:].isdigit() and d.name not in keep:
                    shutil.rmtree(d, ignore_errors=True)


def render_previews(validation: ScenarioValidation) -> dict[str, Path]:
    """A PNG per valid variant, written next to its scene.xml: the start and the oracle's success
    state side by side (the start alone if no oracle ran); returns variant id → path."""
    from benchgen_assets.physics import render_preview

    out = {}
    root = layout.benchmarks_root().parent
    for v in validation.variants:
        if v.manifest.status == "valid" and v.manifest.mjcf_path:
            path = root / v.manifest.dir / PREVIEW_FILE
            oracle = v.report.oracle
            success = oracle.final_qpos if oracle is not None and oracle.solved and oracle.final_qpos else None
            atomic_write_bytes(path, render_preview(str(root / v.manifest.mjcf_path), success_qpos=success))
            out[v.manifest.variant_id] = path
    return out
