"""The strict validation pipeline as blocking asset checks on ``validated_scenario``: each passes
only if every variant passed its stage(s); a failure keeps the preview from running.

In a run over one partition a failed check blocks ``scenario_preview`` the Dagster way (the step is
skipped). In a run over a range each scenario gets its own evaluation events and a failure must block
only that scenario: the check step succeeds, and ``scenario_preview`` skips the scenarios whose
checks failed (``assets.blocking_checks_pass``)."""

import warnings

from dagster import (AssetCheckEvaluation, AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec,
                     AssetIn, MetadataValue, multi_asset_check)
from dagster._utils.warnings import PreviewWarning

from benchgen_assets import layout
from benchgen_assets.records import ScenarioScript, ScenarioValidation

from .assets import _md_table, scenario_script, validated_scenario
from .partitions import scenario_partitions

# Partitioned asset checks are "preview" in Dagster 1.13; they are what makes a check per scenario.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")


def script_origin(script: ScenarioScript) -> str:
    """Who wrote the script the variants ran: the override, or which coder attempt and prompts."""
    if script.source == "override":
        return "code_override (scenario_script config)"
    last = script.attempts[-1]
    prompts = sorted({s.prompt_version for s in (last.coder, last.reviewer) if s is not None})
    verdict = "accepted on the probe variant" if script.accepted else "not accepted on the probe variant"
    return f"coder attempt {last.attempt}/{len(script.attempts)} ({verdict}), prompts {', '.join(prompts) or 'none'}"


def stage_check(validation: ScenarioValidation, script: ScenarioScript, name: str,
                stages: tuple[str, ...]) -> AssetCheckResult:
    rows, first_error, failed_report = [], None, None
    passed_all = True
    for v in validation.variants:
        results = {s.name: s for s in v.report.stages}
        ran = [results[name] for name in stages if name in results]
        ok = len(ran) == len(stages) and all(s.passed for s in ran)
        if ok:
            status, detail = "passed", ""
        else:
            failed = next((s for s in ran if not s.passed), None)
            earlier = v.report.first_failure()
            detail = (f"{failed.name}: {failed.message}" if failed else
                      f"not reached (failed earlier at {earlier.name}: {earlier.message})" if earlier else "not run")
            status = "failed" if failed else "not reached"
            if first_error is None:
                first_error = f"{v.manifest.variant_id}: {detail}"
                failed_report = layout.benchmarks_root().parent / v.manifest.validation_path
        passed_all &= ok
        rows.append([v.manifest.variant_id, status, detail[:300]])
    # A failure names its reason and where to look next: the variant's full ValidationReport, the
    # script it ran and who wrote it (the plan and prompt files are upstream in the lineage).
    links = {} if passed_all else {
        "failed_report": MetadataValue.path(str(failed_report)),
        "script": MetadataValue.path(str(layout.scenario_dir(validation.scenario_id) / "script.py")),
        "script_origin": script_origin(script), "script_sha256": script.code_sha256,
    }
    return AssetCheckResult(
        check_name=name, asset_key=validated_scenario.key,
        passed=passed_all and bool(validation.variants),
        severity=AssetCheckSeverity.ERROR,
        description=None if passed_all else first_error,
        metadata={"variants": MetadataValue.md(_md_table(["variant", "status", "detail"], rows)),
                  "failed": sum(r[1] != "passed" for r in rows), "total": len(rows),
                  "first_error": first_error or "", **links},
    )


validated_scenario_key = validated_scenario.key  # the checks' parameter of that name is the asset's value

# (check name, stages it covers, description). One step evaluates all five: each check is still
# its own blocking asset check in the UI, without paying a Dagster step (and input load) apiece.
CHECKS = [
    ("compilation_check", ("compile",),
     "1. the script parses and build(seed, scale) runs in the sandbox, for every variant"),
    ("geometry_check", ("geometry",),
     "2. every solid valid (BRepCheck), manifold; STL watertight, consistent winding, no self-intersection"),
    ("mjcf_schema_check", ("mjcf_compose", "mjcf_schema", "mjcf_compile"),
     "3. the MJCF is composed, validates against MuJoCo's schema and compiles in MuJoCo"),
    ("stability_check", ("stability",),
     "4. 1 s of simulation: no warnings, finite state, velocity under threshold, no deep penetration"),
    ("solvability_check", ("solvability",),
     "5. the task does not start solved, and its scripted oracle reaches the goal within the time limit"),
]


@multi_asset_check(specs=[AssetCheckSpec(name, asset=validated_scenario, blocking=True, description=description,
                                         partitions_def=scenario_partitions, additional_deps=[scenario_script])
                          for name, _, description in CHECKS],
                   ins={"validated_scenario": AssetIn(validated_scenario.key),
                        "scenario_script": AssetIn(scenario_script.key)},
                   # a range run yields no results (it logs one evaluation per scenario), so no output is required
                   can_subset=True)
def validation_checks(context: AssetCheckExecutionContext, validated_scenario, scenario_script):
    selected = {key.name for key in context.selected_asset_check_keys}
    checks = [(name, stages) for name, stages, _ in CHECKS if name in selected]
    keys = context.partition_keys if context.has_partition_key_range else []
    if len(keys) <= 1:
        for name, stages in checks:
            yield stage_check(validated_scenario, scenario_script, name, stages)
        return
    for key in keys:
        validation, script = validated_scenario[key], scenario_script[key]
        for name, stages in checks:
            result = (stage_check(validation, script, name, stages) if validation is not None else
                      AssetCheckResult(passed=False, description="not reached: an earlier stage failed for this "
                                                                 "scenario (see its validated_scenario metadata)"))
            # Logged, not yielded: a yielded failure would fail the step, i.e. block every scenario of the run.
            context.op_execution_context.log_event(AssetCheckEvaluation(
                asset_key=validated_scenario_key, check_name=name, passed=result.passed, partition=key,
                metadata=result.metadata, description=result.description, blocking=True,
                severity=AssetCheckSeverity.ERROR))


scenario_checks = [validation_checks]
