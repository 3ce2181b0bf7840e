"""The strict validation pipeline as blocking asset checks on ``validated_scenario``: each passes
only if every variant passed its stage(s); a failure keeps the preview from running."""

import warnings

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue, multi_asset_check
from dagster._utils.warnings import PreviewWarning

from benchgen_assets.records import ScenarioValidation

from .assets import _md_table, validated_scenario
from .partitions import scenario_partitions

# Partitioned asset checks are "preview" in Dagster 1.13; they are what makes a check per scenario.
warnings.filterwarnings("ignore", category=PreviewWarning, message="Specifying a partitions_def on an AssetCheckSpec")


def stage_check(validation: ScenarioValidation, name: str, stages: tuple[str, ...]) -> AssetCheckResult:
    rows, first_error = [], None
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
            first_error = first_error or f"{v.manifest.variant_id}: {detail}"
        passed_all &= ok
        rows.append([v.manifest.variant_id, status, detail[:300]])
    return AssetCheckResult(
        check_name=name, asset_key=validated_scenario.key,
        passed=passed_all and bool(validation.variants),
        severity=AssetCheckSeverity.ERROR,
        description=None if passed_all else first_error,
        metadata={"variants": MetadataValue.md(_md_table(["variant", "status", "detail"], rows)),
                  "failed": sum(r[1] != "passed" for r in rows), "total": len(rows),
                  "first_error": first_error or ""},
    )


# (check name, stages it covers, description). One step evaluates all four: each check is still
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
]


@multi_asset_check(specs=[AssetCheckSpec(name, asset=validated_scenario, blocking=True, description=description,
                                         partitions_def=scenario_partitions)
                          for name, _, description in CHECKS])
def validation_checks(validated_scenario: ScenarioValidation):
    for name, stages, _ in CHECKS:
        yield stage_check(validated_scenario, name, stages)


scenario_checks = [validation_checks]
