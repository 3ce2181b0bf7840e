"""The scenario generator's Dagster assets and checks, through real ``dagster.materialize`` on an
ephemeral instance, the real sandbox, validator and offline author."""

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from dagster import DagsterInstance, Definitions, materialize

from benchgen_assets.definitions import defs, materializable
from benchgen_assets.families import FAMILIES
from benchgen_assets.pipeline import save_request
from benchgen_assets.records import GenerationRequest, ScenarioPlan
from benchgen_assets.tasks import load_task
from resources.dagster_resources import shared_resources

CHAIN = ["generation_request", "scenario_plan", "scenario_script", "validated_scenario", "scenario_preview"]
CHECKS = {"compilation_check", "geometry_check", "mjcf_schema_check", "stability_check", "solvability_check"}


def _instance_with(*requests: GenerationRequest) -> DagsterInstance:
    instance = DagsterInstance.ephemeral()
    for r in requests:
        save_request(r)
    instance.add_dynamic_partitions("scenarios", [r.scenario_id for r in requests])
    return instance


def _run(instance, partition, selection=CHAIN, run_config=None):
    return materialize(materializable, instance=instance, partition_key=partition, resources=shared_resources(),
                       selection=selection, run_config=run_config or {}, raise_on_error=False)


def _tables(instance):
    result = materialize(materializable, instance=instance, resources=shared_resources(),
                         selection=["benchmark_manifest", "generation_traces"])
    assert result.success
    return result


def test_definitions_have_all_assets_checks_and_prompts():
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert keys == set(CHAIN) | {"benchmark_manifest", "generation_traces"}
    prompts = {k.to_user_string() for k in graph.get_all_asset_keys()} - keys
    assert prompts == {"planner_prompt", "coder_prompt", "reviewer_prompt"}
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == CHECKS


def test_request_from_ui_config_and_plan_edits(datasets_dir):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("scenarios", ["ui-1"])
    # No request file: the run config creates it (a launch from the UI).
    result = _run(instance, "ui-1", ["generation_request", "scenario_plan"], {"ops": {
        "generation_request": {"config": {"prompt": "3 levers, tier 2", "seed": 9, "variants": 2}},
        "scenario_plan": {"config": {"scale_max": [1.5, 1.5, 1.5], "learning_objectives": ["pull the lever down"]}},
    }})
    assert result.success
    plan = result.output_for_node("scenario_plan")
    assert isinstance(plan, ScenarioPlan) and plan.family == "lever"
    assert plan.scale_limits.max == (1.5, 1.5, 1.5) and plan.learning_objectives == ["pull the lever down"]
    saved = json.loads((datasets_dir / "benchmarks" / "requests" / "ui-1.json").read_text())
    assert saved["prompt"] == "3 levers, tier 2" and saved["seed"] == 9
    on_disk = json.loads((datasets_dir / "benchmarks" / "ui-1" / "plan.json").read_text())
    assert on_disk["edits"]["scale_limits"] == {"max": [1.5, 1.5, 1.5]}

    instance.add_dynamic_partitions("scenarios", ["ui-2"])
    missing = _run(instance, "ui-2", ["generation_request"])
    assert not missing.success
    failure = next(e for e in missing.all_events if e.is_step_failure)
    error = failure.event_specific_data.error
    assert "no generation request saved for scenario 'ui-2'" in (error.cause or error).message


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_tier1_scenario_end_to_end(datasets_dir):
    instance = _instance_with(GenerationRequest(scenario_id="t1-a", tier=1, seed=3, variants=2))
    result = _run(instance, "t1-a")
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == CHECKS and all(e.passed for e in evaluations.values())

    scenario = datasets_dir / "benchmarks" / "t1-a"
    for variant in ("v00", "v01"):
        d = scenario / variant
        assert (d / "scene.xml").exists() and (d / "validation.json").exists() and (d / "preview.png").exists()
        assert list((d / "meshes").glob("*.stl"))
        assert json.loads((d / "validation.json").read_text())["passed"] is True
        assert load_task(d).goal and json.loads((d / "validation.json").read_text())["oracle"]["solved"] is True
        with Image.open(d / "preview.png") as preview:  # the start and the oracle's success, side by side
            assert preview.size == (960, 360)
    assert (scenario / "script.py").exists() and (scenario / "attempts" / "attempts.json").exists()
    preview_md = result.asset_materializations_for_node("scenario_preview")[0].metadata["previews"].value
    assert "data:image/png;base64," in preview_md

    _tables(instance)
    manifest = pd.read_parquet(datasets_dir / "benchmarks" / "manifest.parquet")
    assert list(manifest["variant_id"]) == ["v00", "v01"] and manifest["passed"].all()
    row = manifest.iloc[0]
    assert row["tier"] == 1 and FAMILIES[row["family"]].tier == 1
    assert row["mjcf_sha256"] == _sha(datasets_dir / row["mjcf_path"])
    assert list(row["stl_sha256"]) == [_sha(datasets_dir / p) for p in row["stl_paths"]]
    assert row["max_velocity"] is not None and json.loads(row["parameters"])
    assert row["instruction"] and row["predicate"].startswith("site ") and row["success_metric"].endswith(("mm", "m/s"))
    assert 0 < row["oracle_time_s"] <= row["time_limit_s"]
    traces = pd.read_parquet(datasets_dir / "benchmarks" / "traces.parquet")
    assert {"planner", "coder", "reviewer", "validator"} <= set(traces["step"])
    coder = traces[traces["step"] == "coder"].iloc[0]
    assert coder["prompt_tokens"] > 0 and "def build" in coder["reply"] and list(coder["llm_outcomes"]) == ["ok"]


@pytest.mark.slow
def test_broken_code_override_fails_blocking_check_and_spares_other_partitions(datasets_dir):
    instance = _instance_with(GenerationRequest(scenario_id="good", family="peg_in_hole", seed=1, variants=1),
                              GenerationRequest(scenario_id="bad", family="peg_in_hole", seed=1, variants=1))
    assert _run(instance, "good").success
    good_xml = datasets_dir / "benchmarks" / "good" / "v00" / "scene.xml"
    before = good_xml.read_bytes()

    override = "from benchgen_assets.scene import Scene\n\n\ndef build(seed, scale):\n    return 1 / 0\n"
    result = _run(instance, "bad", run_config={"ops": {"scenario_script": {"config": {"code_override": override}}}})
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    compile_check = evaluations["compilation_check"]
    assert not compile_check.passed and "ZeroDivisionError" in compile_check.description
    assert all(not e.passed for e in evaluations.values())
    # the blocking check kept the preview from running
    assert not result.asset_materializations_for_node("scenario_preview")
    staged = datasets_dir / "benchmarks" / "staging" / "bad" / "v00" / "validation.json"
    report = json.loads(staged.read_text())
    assert report["passed"] is False and report["error"]["kind"] == "runtime"
    # The failed check links to that report, the script it ran and who wrote that script.
    links = compile_check.metadata
    assert links["failed_report"].path == str(staged)
    assert Path(links["script"].path).read_text() == override
    assert links["script_origin"].value.startswith("code_override")
    assert not (datasets_dir / "benchmarks" / "bad" / "v00").exists()
    assert good_xml.read_bytes() == before  # the other partition is untouched

    _tables(instance)
    manifest = pd.read_parquet(datasets_dir / "benchmarks" / "manifest.parquet").set_index("scenario_id")
    assert manifest.loc["good", "status"] == "valid" and manifest.loc["bad", "status"] == "rejected"
    assert manifest.loc["bad", "failed_stage"] == "compile"
    traces = pd.read_parquet(datasets_dir / "benchmarks" / "traces.parquet")
    assert "override" in set(traces[traces["scenario_id"] == "bad"]["step"])


@pytest.mark.slow
def test_failed_check_names_the_coder_attempt_and_prompts_behind_the_script(datasets_dir):
    """A coder that only writes plausible-but-broken scripts (offline fault injection), one attempt:
    the script goes on unaccepted, its variants fail a blocking check, and the check says which
    attempt and which prompt versions wrote it."""
    from benchgen_assets.authoring.prompts import PROMPTS_DIR
    from resources.dagster_resources import LLMResource
    from resources.llm.prompts import read_prompt_file

    instance = _instance_with(GenerationRequest(scenario_id="coder-bad", family="peg_in_hole", seed=1, variants=1))
    result = materialize(materializable, instance=instance, partition_key="coder-bad", selection=CHAIN,
                         resources={**shared_resources(), "llm": LLMResource(fault_domain=1.0)},
                         run_config={"ops": {"scenario_script": {"config": {"max_attempts": 1}}}}, raise_on_error=False)
    assert not result.success
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed
    prompts = sorted(read_prompt_file(PROMPTS_DIR / f"{n}.md").prompt_version for n in ("coder", "reviewer"))
    for check in failed:
        assert check.metadata["script_origin"].value == (
            f"coder attempt 1/1 (not accepted on the probe variant), prompts {', '.join(prompts)}")
        assert check.metadata["first_error"].value.startswith("v00: ")


@pytest.mark.slow
def test_range_run_keeps_each_scenario_its_own_partition_and_one_failure_spares_the_others(datasets_dir):
    """One run over a range (a backfill, the manager CLI): each scenario gets its own materializations,
    metadata and check evaluations; a scenario whose stage raises is recorded as failed there, its
    checks fail and it gets no preview, while its neighbours finish."""
    from benchgen_assets.defs.assets import FAILED_KEY
    from benchgen_assets.manager import scenario_summary

    instance = _instance_with(GenerationRequest(scenario_id="r-a", family="peg_in_hole", seed=1, variants=1),
                              GenerationRequest(scenario_id="r-c", tier=1, seed=4, variants=1))
    instance.add_dynamic_partitions("scenarios", ["r-b-missing"])  # a partition with no saved request
    instance.add_dynamic_partitions("scenarios", ["r-d"])
    save_request(GenerationRequest(scenario_id="r-d", family="block_in_bin", seed=2, variants=1))
    keys = ["r-a", "r-c", "r-b-missing", "r-d"]
    result = materialize(materializable, instance=instance, resources=shared_resources(), selection=CHAIN,
                         tags={"dagster/asset_partition_range_start": "r-a",
                               "dagster/asset_partition_range_end": "r-d"}, raise_on_error=False)
    assert result.success  # the step-level outcome; each scenario's own is in its metadata and checks
    for node in CHAIN:
        by_partition = {m.partition: m for m in result.asset_materializations_for_node(node)}
        assert sorted(by_partition) == sorted(keys), node
    request_md = {m.partition: m.metadata for m in result.asset_materializations_for_node("generation_request")}
    assert "no generation request saved for scenario 'r-b-missing'" in request_md["r-b-missing"][FAILED_KEY].value
    assert FAILED_KEY not in request_md["r-a"]
    evaluations: dict[str, dict[str, bool]] = {}
    for e in result.get_asset_check_evaluations():
        evaluations.setdefault(e.partition, {})[e.check_name] = e.passed
    assert set(evaluations) == set(keys) and all(set(v) == CHECKS for v in evaluations.values())
    assert not any(evaluations["r-b-missing"].values())
    for key in ("r-a", "r-c", "r-d"):
        assert all(evaluations[key].values()), key
        assert (datasets_dir / "benchmarks" / key / "v00" / "preview.png").exists()
    preview_md = {m.partition: m.metadata for m in result.asset_materializations_for_node("scenario_preview")}
    assert preview_md["r-b-missing"]["rendered"].value == 0 and preview_md["r-a"]["rendered"].value == 1
    assert not (datasets_dir / "benchmarks" / "r-b-missing").exists()
    # What the manager CLI reports per scenario of such a run
    summaries = {key: scenario_summary(result, key, 1.0, range_run=True) for key in keys}
    assert not summaries["r-b-missing"]["success"]
    assert "no generation request saved for scenario 'r-b-missing'" in summaries["r-b-missing"]["error"]
    for key in ("r-a", "r-c", "r-d"):
        assert summaries[key]["success"] and summaries[key]["valid"] == summaries[key]["total"] == 1, summaries[key]
        assert set(summaries[key]["checks"]) == CHECKS and summaries[key]["tokens"] > 0
