"""The teacher's Dagster assets and checks, materialized for real on an ephemeral instance."""

import json
import shutil

import pandas as pd
import pytest
from dagster import DagsterInstance, Definitions, materialize

from resources.dagster_resources import shared_resources
from resources.paths import PROJECT_ROOT
from teacher_assets.defs.assets import EPISODE_ASSETS, episodes_partitions, proposer_dataset
from teacher_assets.defs.checks import TEACHER_CHECKS

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"


@pytest.fixture
def episodes(tmp_path):
    root = tmp_path / "episodes"
    for name in ("pick_cup_place_tray", "fold_towel", "block_into_drawer"):
        shutil.copytree(SAMPLES / name, root / name)
    corrupt = root / "corrupt_frames"
    shutil.copytree(SAMPLES / "lamp_on", corrupt)
    frame = corrupt / "frames" / "frame_04.png"
    frame.write_bytes(frame.read_bytes()[:60])  # a truncated PNG
    return root


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_episode(instance, episodes, episode_id):
    instance.add_dynamic_partitions(episodes_partitions.name, [episode_id])
    return materialize(
        [*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=episode_id, instance=instance, resources=shared_resources(),
        run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}}}}, raise_on_error=False,
    )


def materializations(result) -> dict:
    return {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}


def test_accepted_episode_end_to_end(datasets_dir, episodes, instance):
    result = run_episode(instance, episodes, "pick_cup_place_tray")
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {"bt_schema_check", "btcpp_load_check", "pal_compliance_check", "executability_check"}
    assert all(c.passed and c.metadata["applicable"].value for c in checks.values())
    assert "recovery still succeeds" in checks["executability_check"].description

    meta = materializations(result)
    assert [meta[a]["stage_result"].value for a in ("oxe_episode", "feasibility", "scene_report", "bt_draft",
                                                    "refined_bt", "bt_xml", "bt_score")] == ["passed"] * 7
    assert "| critic (iteration 1) | ACCEPT |" in meta["bt_draft"]["critic_dialogue"].value
    assert "| structure |" in meta["bt_score"]["score"].value and meta["bt_score"]["llm_calls"].value >= 1

    out = datasets_dir / "proposer" / "pick_cup_place_tray"
    assert sorted(p.name for p in out.iterdir()) == ["audit_log.json", "bt.xml", "subtree_map.json"]
    xml = (out / "bt.xml").read_text()
    assert 'BTCPP_format="4"' in xml and 'name="node_01"' in xml and "<TreeNodesModel>" in xml
    audit = json.loads((out / "audit_log.json").read_text())
    agents = [a["agent"] for a in audit["agents"]]
    assert agents == ["A feasibility", "B scene analysis", "C architect", "C.5 critic", "D robustness",
                      "E subtrees", "F conformance", "G scorer"]
    assert all(len(a["input_digest"]) == 64 for a in audit["agents"])
    assert audit["critic_dialogue"][0]["speaker"] == "architect" and audit["score"]["verdict"] == "ACCEPT"
    subtrees = json.loads((out / "subtree_map.json").read_text())
    assert {"T_Navigate", "T_Manipulate_Grasp"} <= {s["id"] for s in subtrees["subtrees"]}


def test_infeasible_episode_is_skipped_and_spends_no_tokens_after_feasibility(datasets_dir, episodes, instance):
    result = run_episode(instance, episodes, "fold_towel")
    assert result.success
    meta = materializations(result)
    assert meta["feasibility"]["stage_result"].value == "STOPPED HERE (skipped)"
    assert "fold" in meta["feasibility"]["reason"].value
    assert meta["feasibility"]["llm_calls"].value == 1
    for later in ("scene_report", "bt_draft", "refined_bt", "bt_xml", "bt_score"):
        assert meta[later]["stage_result"].value == "stopped upstream at feasibility (skipped)"
        assert meta[later]["llm_calls"].value == 0
    assert all(e.passed and not e.metadata["applicable"].value for e in result.get_asset_check_evaluations())
    assert not (datasets_dir / "proposer" / "fold_towel").exists()
    outcome = json.loads((datasets_dir / "proposer" / "_outcomes" / "fold_towel.json").read_text())
    assert outcome["status"] == "skipped" and outcome["stopped_at"] == "feasibility"


def test_corrupt_episode_is_invalid_and_other_partitions_are_unaffected(datasets_dir, episodes, instance):
    bad = run_episode(instance, episodes, "corrupt_frames")
    assert bad.success
    meta = materializations(bad)
    assert meta["oxe_episode"]["stage_result"].value == "STOPPED HERE (invalid)"
    assert meta["oxe_episode"]["reason"].value.startswith("corrupt_frame")
    assert meta["feasibility"]["llm_calls"].value == 0

    good = run_episode(instance, episodes, "block_into_drawer")
    assert good.success and good.output_for_node("bt_score").status == "accepted"
    # The dataset reads every partition's outcome from disk.
    dataset = materialize([proposer_dataset], instance=instance)
    summary = dataset.output_for_node("proposer_dataset")
    assert (summary["episodes"], summary["accepted"], summary["invalid"]) == (2, 1, 1)
    assert summary["reasons"]["invalid"][0].startswith("corrupt_frames: corrupt_frame")
    table = pd.read_parquet(datasets_dir / "proposer" / "proposer_dataset.parquet")
    assert list(table["episode_id"]) == ["block_into_drawer"]
    assert table["bt_xml"][0].startswith("<root") and table["score_grounding"][0] >= 6
    lines = (datasets_dir / "proposer" / "proposer_dataset.jsonl").read_text().splitlines()
    assert [json.loads(line)["episode_id"] for line in lines] == ["block_into_drawer"]


def test_missing_partition_folder_is_invalid_with_reason(datasets_dir, episodes, instance):
    result = run_episode(instance, episodes, "no_such_episode")
    assert result.success
    assert materializations(result)["oxe_episode"]["reason"].value.startswith("missing_episode")


def test_executability_check_fails_a_tree_without_recovery():
    from teacher_assets.bt.world import world_for_objects
    from teacher_assets.tree_checks import executability_check

    world = world_for_objects(["cup", "table"])
    bare = ('<root BTCPP_format="4" main_tree_to_execute="MainTree"><BehaviorTree ID="MainTree"><Sequence>'
            '<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="GRASP" obj="cup"/></Sequence></BehaviorTree></root>')
    verdict = executability_check(bare, world)
    assert not verdict.passed and "no guarded step" in verdict.description
    wrong = bare.replace('<Action ID="NAVIGATE_TO" obj="cup"/><Action ID="GRASP" obj="cup"/>',
                         '<Action ID="PLACE_ON_TOP" obj="table"/>')
    assert "hand_empty" in executability_check(wrong, world).description


def test_definitions_have_all_assets_checks_and_prompts():
    from teacher_assets.definitions import defs

    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert keys == {"oxe_episode", "feasibility", "scene_report", "bt_draft", "refined_bt", "bt_xml", "bt_score",
                    "proposer_dataset"}
    prompts = {k.to_user_string() for k in graph.get_all_asset_keys()} - keys
    assert prompts == {f"{p.stem}_prompt" for p in (PROJECT_ROOT / "teacher_assets" / "prompts").glob("*.md")}
    assert {k.name for k in graph.asset_check_keys} == {"bt_schema_check", "btcpp_load_check", "pal_compliance_check",
                                                       "executability_check"}
