"""Scenario generator assets, partitioned per scenario id; each is a thin call into ``pipeline``.

A run covers one scenario (a UI launch, the sensor, the nightly refresh) or a range of them (a
backfill: ``BackfillPolicy.multi_run``; the manager CLI, one range run per worker): each asset then
loops over the run's partitions and records metadata per partition, and a scenario whose stage
raises is recorded as failed there (value ``None``, passed on by its later stages) instead of failing
the others; see ``for_each_scenario``.
"""


import base64
import io
import os
import time
import warnings
from typing import Callable, Optional

from dagster import (AssetExecutionContext, BackfillPolicy, BetaWarning, Config, MaterializeResult, MetadataValue,
                     Output, asset)
from pydantic import Field

from benchgen_assets.authoring.prompts import PROMPTS_DIR
from resources.dagster_prompts import prompt_asset_specs, prompt_key
from resources.dagster_resources import LLM_POOL, PARTITIONS_IO_MANAGER, LLMResource, llm_metadata

from .partitions import GROUP, scenario_partitions

# backfill_policy is "beta" in Dagster 1.13; it is what groups a backfill's partitions into range runs.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
SCENARIOS_PER_RUN_ENV = "BENCHGEN_SCENARIOS_PER_RUN"
# Metadata of a scenario whose stage raised in a range run (a one-scenario run fails the step instead).
FAILED_KEY, FAILED_STAGE_KEY = "scenario_error", "failed_stage"


def scenarios_per_run() -> int:
    """Partitions per backfill run (``$BENCHGEN_SCENARIOS_PER_RUN``, default 10): a run's fixed cost
    (run record, one step and one input load per stage) is shared, and a backfill still spreads over
    the run queue's slots."""
    return max(1, int(os.environ.get(SCENARIOS_PER_RUN_ENV, "10")))


SCENARIO_ASSET_ARGS = dict(partitions_def=scenario_partitions, group_name=GROUP, io_manager_key=PARTITIONS_IO_MANAGER,
                           backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=scenarios_per_run()))


def for_each_scenario(context: AssetExecutionContext, stage: str, work: Callable, **upstream):
    """``work(scenario_id, **inputs) -> (value, metadata)`` for every partition of the run.

    Each ``upstream`` value is the upstream asset's value: the value itself for one partition,
    ``{id: value}`` for a range (``PartitionsIOManager``). One partition: the value goes out with its
    metadata, and an error fails the step as any Dagster step. A range: metadata per partition, and a
    stage that raises records that scenario as failed (value ``None``, which its later stages pass
    on) so one bad scenario never takes down the others."""
    keys = context.partition_keys
    if len(keys) == 1:
        value, metadata = work(keys[0], **upstream)
        return Output(value, metadata=metadata)
    out = {}
    for key in keys:
        inputs = {name: values[key] for name, values in upstream.items()}
        failed_upstream = [name for name, value in inputs.items() if value is None]
        if failed_upstream:
            out[key] = None
            context.add_asset_metadata({FAILED_KEY: f"not run: {', '.join(failed_upstream)} failed",
                                        FAILED_STAGE_KEY: "upstream"}, partition_key=key)
            continue
        try:
            out[key], metadata = work(key, **inputs)
        except Exception as exc:  # noqa: BLE001 — recorded on the scenario and in the run log, never swallowed
            context.log.exception(f"scenario {key}: {stage} failed")
            out[key], metadata = None, {FAILED_KEY: f"{stage}: {type(exc).__name__}: {exc}"[:2000], FAILED_STAGE_KEY: stage}
        context.add_asset_metadata(metadata, partition_key=key)
    return Output(out)


def _md_table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")[:200]

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class GenerationRequestConfig(Config):
    """Set any of these to create or change the partition's request from the UI."""

    tier: Optional[int] = Field(None, description="1 (single objects) … 3 (mechanisms)")
    family: Optional[str] = Field(None, description="e.g. peg_in_hole, lever")
    prompt: Optional[str] = Field(None, description='free text, e.g. "10 levers, tier 2"')
    seed: Optional[int] = Field(None, description="base seed of the variants")
    variants: Optional[int] = Field(None, description="variants (seed × scale vector) to build")


# Values cross the stages untyped: in a range run each is {scenario id: record or None} (see
# ``for_each_scenario``); the records themselves are pydantic models (``benchgen_assets.records``).
@asset(**SCENARIO_ASSET_ARGS, kinds={"python"})
def generation_request(context: AssetExecutionContext, config: GenerationRequestConfig):
    """What was asked for this scenario: tier, family or free-text prompt, base seed, variant count.
    (In a range run, config set here applies to every scenario of the run.)"""
    from benchgen_assets.authoring.variants import draw_variants
    from benchgen_assets.pipeline import load_request, save_request
    from benchgen_assets.records import ScaleLimits

    overrides = config.model_dump()

    def work(key):
        request = load_request(key, overrides)
        if any(v is not None for v in overrides.values()):
            save_request(request)
        # The variant seeds depend on the base seed only; their scale vectors also on the plan's limits.
        seeds = [v.seed for v in draw_variants(request.seed, request.variants, ScaleLimits())]
        return request, {
            "tier": request.tier or 0, "family": request.family or "", "prompt": request.prompt or "",
            "seed": request.seed, "variants": request.variants, "variant_seeds": MetadataValue.json(seeds),
        }

    return for_each_scenario(context, "generation_request", work)


class ScenarioPlanConfig(Config):
    """Human-in-the-loop plan edits: every field set here replaces the planner's value."""

    title: Optional[str] = None
    family: Optional[str] = None
    tier: Optional[int] = None
    summary: Optional[str] = None
    geometric_requirements: Optional[list[str]] = None
    learning_objectives: Optional[list[str]] = None
    self_verification: Optional[list[str]] = None
    scale_min: Optional[list[float]] = Field(None, description="per-axis (x, y, z) lower scale limits")
    scale_max: Optional[list[float]] = Field(None, description="per-axis (x, y, z) upper scale limits")

    def edits(self) -> dict:
        out = {k: v for k, v in self.model_dump(exclude={"scale_min", "scale_max"}).items() if v is not None}
        limits = {k: v for k, v in (("min", self.scale_min), ("max", self.scale_max)) if v is not None}
        if limits:
            out["scale_limits"] = limits
        return out


@asset(**SCENARIO_ASSET_ARGS, kinds={"python"}, pool=LLM_POOL, deps=[prompt_key("planner")])
def scenario_plan(context: AssetExecutionContext, config: ScenarioPlanConfig, llm: LLMResource, generation_request):
    """The Planner's design: geometric requirements, learning objectives, self-verification, scale limits."""
    from benchgen_assets.pipeline import make_plan, variants_for

    edits = config.edits()

    def work(key, generation_request):
        client = llm.client_for(context, key)
        plan, step = make_plan(client, generation_request, edits)
        variants = variants_for(generation_request, plan)
        return plan, {
            "family": plan.family or "", "tier": plan.tier, "title": plan.title, "human_edits": sorted(edits),
            "plan": MetadataValue.json(plan.model_dump(mode="json")),
            "variants": MetadataValue.md(_md_table(["variant", "seed", "scale (x, y, z)"],
                                                   [[v.variant_id, v.seed, v.scale] for v in variants])),
            "prompt_hash": step.prompt_hash, **llm_metadata(client),
        }

    return for_each_scenario(context, "scenario_plan", work, generation_request=generation_request)


class ScenarioScriptConfig(Config):
    max_attempts: int = Field(4, ge=1, le=20, description="Coder ⇄ Reviewer ⇄ validator rounds")
    code_override: Optional[str] = Field(None, description="a whole build123d module to use instead of the coder's")


@asset(**SCENARIO_ASSET_ARGS, kinds={"python", "build123d"}, pool=LLM_POOL,
       deps=[prompt_key("coder"), prompt_key("reviewer")])
def scenario_script(context: AssetExecutionContext, config: ScenarioScriptConfig, llm: LLMResource,
                    generation_request, scenario_plan):
    """The build123d module with ``build(seed, scale)``, from the Coder ⇄ Internal Reviewer ⇄ validator loop."""
    from benchgen_assets import layout
    from benchgen_assets.pipeline import make_script

    def work(key, generation_request, scenario_plan):
        client = llm.client_for(context, key)
        t0 = time.monotonic()
        script = make_script(client, generation_request, scenario_plan, max_attempts=config.max_attempts,
                             code_override=config.code_override)
        rows = []
        for a in script.attempts:
            failed = a.validation.first_failure() if a.validation else None
            rows.append([a.attempt, a.source, a.review.decision if a.review else "-",
                         "; ".join(a.review.issues) if a.review and a.review.issues else "",
                         "-" if a.validation is None else ("passed" if a.validation.passed else f"failed: {failed.name}"),
                         (a.feedback or "")[:160], a.seconds])
        if not script.accepted:
            context.log.warning(f"{key}: no attempt passed validation on the probe variant after "
                                f"{len(script.attempts)} attempt(s); the last one goes on (its variants will be "
                                f"staged). Last feedback: {script.attempts[-1].feedback}")
        return script, {
            "accepted": script.accepted, "source": script.source, "attempts": len(script.attempts),
            "code_sha256": script.code_sha256,
            "attempt_table": MetadataValue.md(_md_table(
                ["attempt", "source", "review", "issues", "validator", "feedback", "seconds"], rows)),
            "script": MetadataValue.path(str(layout.scenario_dir(script.scenario_id) / "script.py")),
            "attempts_dir": MetadataValue.path(str(layout.scenario_dir(script.scenario_id) / "attempts")),
            "seconds": round(time.monotonic() - t0, 3), **llm_metadata(client),
        }

    return for_each_scenario(context, "scenario_script", work, generation_request=generation_request,
                             scenario_plan=scenario_plan)


@asset(**SCENARIO_ASSET_ARGS, kinds={"mujoco"})
def validated_scenario(context: AssetExecutionContext, generation_request, scenario_plan, scenario_script):
    """Every variant (seed × scale) built in the sandbox, validated strictly, and exported to
    ``datasets/benchmarks/<id>/<variant>/`` (valid) or ``staging/`` (rejected, with its report)."""
    from benchgen_assets import layout
    from benchgen_assets.pipeline import variants_for
    from benchgen_assets.refresh import input_fingerprint
    from benchgen_assets.variant_runner import validate_scenario

    def work(key, generation_request, scenario_plan, scenario_script):
        t0 = time.monotonic()
        result = validate_scenario(key, scenario_plan, scenario_script, variants_for(generation_request, scenario_plan))
        rows, stage_s = [], {}
        for v in result.variants:
            failed = v.report.first_failure()
            rows.append([v.manifest.variant_id, v.manifest.seed, v.manifest.scale, v.manifest.status,
                         f"{failed.name}: {failed.message}" if failed else "",
                         v.report.max_velocity, v.report.max_penetration_m])
            for k, s in v.report.timings_s.items():
                stage_s[k] = round(stage_s.get(k, 0.0) + s, 3)
        return result, {
            "valid": result.valid, "total": len(result.variants), "yield": round(result.yield_ratio, 4),
            "variants": MetadataValue.md(_md_table(
                ["variant", "seed", "scale", "status", "first failure", "max velocity", "max penetration (m)"], rows)),
            "stage_seconds": MetadataValue.json(stage_s),
            "dir": MetadataValue.path(str(layout.scenario_dir(key))),
            "seconds": round(time.monotonic() - t0, 3),
            # What the nightly refresh compares against to find scenarios whose inputs changed.
            "family": scenario_plan.family or "",
            "input_fingerprint": input_fingerprint(generation_request, scenario_plan.family),
        }

    return for_each_scenario(context, "validated_scenario", work, generation_request=generation_request,
                             scenario_plan=scenario_plan, scenario_script=scenario_script)


def _thumbnail_b64(png_path, height: int = 180) -> str:
    from PIL import Image

    with Image.open(png_path) as img:
        img.thumbnail((4 * height, height))  # a start | success pair keeps the height of a single frame
        buf = io.BytesIO()
        img.save(buf, format="PNG")  # optimize=True: 3 % smaller, 3-4 × the time
    return base64.b64encode(buf.getvalue()).decode()


@asset(partitions_def=scenario_partitions, group_name=GROUP, kinds={"mujoco"},
       backfill_policy=SCENARIO_ASSET_ARGS["backfill_policy"])
def scenario_preview(context: AssetExecutionContext, validated_scenario) -> MaterializeResult:
    """A rendered PNG per valid variant (MuJoCo offscreen): its start and the oracle's success state
    side by side, with the task's instruction and the oracle's time, shown here as metadata.

    One scenario: Dagster skips this step when a blocking check failed. A range run: the checks
    record one evaluation per scenario and pass the step, so a scenario whose variants did not all
    pass every stage (what the blocking checks judge) is not rendered here; its metadata says so."""
    keys = context.partition_keys
    if len(keys) == 1:
        return MaterializeResult(metadata=_preview_metadata(validated_scenario))
    for key in keys:
        validation = validated_scenario[key]
        if not blocking_checks_pass(validation):
            why = "its validation failed" if validation is None else "a blocking check on validated_scenario failed"
            context.add_asset_metadata({FAILED_KEY: f"not rendered: {why}", FAILED_STAGE_KEY: "validation_checks",
                                        "rendered": 0}, partition_key=key)
            continue
        try:
            metadata = _preview_metadata(validation)
        except Exception as exc:  # noqa: BLE001 — recorded on the scenario and in the run log, never swallowed
            context.log.exception(f"scenario {key}: scenario_preview failed")
            metadata = {FAILED_KEY: f"scenario_preview: {type(exc).__name__}: {exc}"[:2000],
                        FAILED_STAGE_KEY: "scenario_preview", "rendered": 0}
        context.add_asset_metadata(metadata, partition_key=key)
    return MaterializeResult()


def _preview_metadata(validation) -> dict:
    from benchgen_assets.variant_runner import render_previews

    t0 = time.monotonic()
    previews = render_previews(validation)
    manifests = {v.manifest.variant_id: v.manifest for v in validation.variants}
    md = ["| variant | task | oracle | start → success |", "|---|---|---|---|"]
    for vid, p in sorted(previews.items()):
        m = manifests[vid]
        oracle = f"solved in {m.oracle_time_s:g} s of {m.time_limit_s:g} s" if m.oracle_time_s is not None else "–"
        md.append(f"| {vid} | {m.instruction or '–'} | {oracle} | ![{vid}](data:image/png;base64,{_thumbnail_b64(p)}) |")
    return {
        "previews": MetadataValue.md("\n".join(md)),
        **{f"preview_{vid}": MetadataValue.path(str(p)) for vid, p in sorted(previews.items())},
        "rendered": len(previews), "seconds": round(time.monotonic() - t0, 3),
    }


def blocking_checks_pass(validation) -> bool:
    """What the blocking checks on ``validated_scenario`` (``checks.CHECKS``) conclude together: every
    check covers its stages of every variant, so all pass exactly when every variant passed."""
    return validation is not None and bool(validation.variants) and all(v.report.passed for v in validation.variants)


def _write_parquet(df, path) -> None:
    from resources.atomic import atomic_write_bytes

    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


@asset(group_name=GROUP, deps=[validated_scenario, scenario_preview], kinds={"parquet"})
def benchmark_manifest(context: AssetExecutionContext) -> MaterializeResult:
    """Every scenario and variant on disk: ScenarioManifest + ValidationReport fields (parquet)."""
    from benchgen_assets import layout
    from benchgen_assets.tables import manifest_table

    df = manifest_table()
    _write_parquet(df, layout.manifest_path())
    valid = int(df["passed"].sum()) if len(df) else 0
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(layout.manifest_path())), "rows": len(df),
        "scenarios": int(df["scenario_id"].nunique()) if len(df) else 0, "valid": valid,
        "rejected": len(df) - valid, "yield": round(valid / len(df), 4) if len(df) else 0.0,
        "preview": MetadataValue.md(_md_table(
            ["scenario", "variant", "family", "status", "failed stage"],
            df[["scenario_id", "variant_id", "family", "status", "failed_stage"]].head(50).values.tolist())),
    })


@asset(group_name=GROUP, deps=[scenario_plan, scenario_script], kinds={"parquet"})
def generation_traces(context: AssetExecutionContext) -> MaterializeResult:
    """Planner / coder / reviewer / validator steps of every attempt, as an RL training table (parquet)."""
    from benchgen_assets import layout
    from benchgen_assets.tables import traces_table

    df = traces_table()
    _write_parquet(df, layout.traces_path())
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(layout.traces_path())), "rows": len(df),
        "scenarios": int(df["scenario_id"].nunique()) if len(df) else 0,
        "steps": MetadataValue.json(df["step"].value_counts().to_dict() if len(df) else {}),
        "llm_prompt_tokens": int(df["prompt_tokens"].sum()), "llm_completion_tokens": int(df["completion_tokens"].sum()),
    })


scenario_assets = [generation_request, scenario_plan, scenario_script, validated_scenario, scenario_preview]
table_assets = [benchmark_manifest, generation_traces]
# Not materializable: lineage nodes of the prompt files, in a group of their own.
prompt_specs = prompt_asset_specs(PROMPTS_DIR, group=f"{GROUP}_prompts")
