"""The proposer table as trainers read it: Hugging Face ``datasets`` over the parquet and the dataset card
written by a real run (episodes materialized through Dagster, one of them imported from LeRobot)."""

import json
import shutil

import pytest
import yaml
from dagster import DagsterInstance, materialize

from resources.dagster_resources import shared_resources
from resources.paths import PROJECT_ROOT
from teacher_assets.defs.assets import EPISODE_ASSETS, episodes_partitions, proposer_dataset
from teacher_assets.defs.checks import TEACHER_CHECKS
from teacher_assets.episodes.importers import import_dataset
from teacher_assets.proposer_format import system_prompt
from tests.robot_data_fixtures import write_lerobot_v2

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"


@pytest.fixture(scope="module")
def proposer_run(tmp_path_factory):
    """Three episodes through the teacher (two accepted, one skipped), then ``proposer_dataset``."""
    tmp = tmp_path_factory.mktemp("proposer")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCHGEN_DATASETS", str(tmp / "datasets"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    episodes = tmp / "episodes"
    for name in ("block_into_drawer", "fold_towel"):
        shutil.copytree(SAMPLES / name, episodes / name)
    write_lerobot_v2(tmp / "so100_cups", [12], ["Pick up the red cup and place it on the tray."])
    assert len(import_dataset("lerobot", tmp / "so100_cups", episodes).imported) == 1
    ids = ["block_into_drawer", "fold_towel", "so100_cups_000000"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(episodes_partitions.name, ids)
        for episode_id in ids:
            assert materialize([*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=episode_id, instance=instance,
                               resources=shared_resources(),
                               run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": str(episodes)}}}}).success
        assert materialize([proposer_dataset], instance=instance).success
    yield tmp / "datasets" / "proposer", tmp / "hf-cache"
    mp.undo()


def test_parquet_loads_with_hf_datasets_in_sft_shapes(proposer_run):
    from datasets import load_dataset

    proposer, cache = proposer_run
    ds = load_dataset("parquet", data_files=str(proposer / "proposer_dataset.parquet"), split="train", cache_dir=str(cache))
    assert ds.num_rows == 2
    assert {"episode_id", "instruction", "bt_xml", "scene_report", "score_grounding", "repaired", "prompt", "completion",
            "messages", "source_dataset", "robot", "teacher_model"} <= set(ds.column_names)
    rows = {r["episode_id"]: r for r in ds}
    assert sorted(rows) == ["block_into_drawer", "so100_cups_000000"]
    for row in rows.values():
        assert row["completion"] == row["bt_xml"] and row["completion"].startswith("<root")
        scene = json.loads(row["scene_report"])
        assert row["prompt"].startswith(f"Instruction: {row['instruction']}")
        assert all(entity in row["prompt"] for entity in scene["entities"])
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][0]["content"] == system_prompt() and "PLACE_NEAR_HEATING_ELEMENT" in system_prompt()
        assert all(c in system_prompt() for c in ("IsHolding", "IsOpen", "IsReachable", "IsToggledOn"))
        assert row["messages"][1]["content"] == row["prompt"] and row["messages"][2]["content"] == row["bt_xml"]
        assert row["teacher_model"]
    imported = rows["so100_cups_000000"]
    assert (imported["source_dataset"], imported["robot"]) == ("so100_cups", "so100")
    assert rows["block_into_drawer"]["source_dataset"] == "benchgen-synthetic-mujoco"


def test_dataset_card_configs_load_and_describe_the_data(proposer_run):
    from datasets import load_dataset

    proposer, cache = proposer_run
    card = (proposer / "README.md").read_text()
    assert card.startswith("---\n") and "&id" not in card  # plain YAML, no anchors the Hub's parser may refuse
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "other" and "text-generation" in front["task_categories"]
    assert front["dataset_info"]["splits"] == [{"name": "train", "num_examples": 2}]
    assert {"name": "messages", "list": [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]} \
        in front["dataset_info"]["features"]
    body = card.split("---\n", 2)[2]
    assert "| accepted | 2 |" in body and "| skipped | 1 |" in body and "so100_cups" in body
    assert all(f"`{c}`" in body for c in ("critic_error_labels", "critic_error_labels_fixed", "interpretation_notes"))

    # The card's configs are what `datasets` reads from the folder.
    chat = load_dataset(str(proposer), "messages", split="train", cache_dir=str(cache))
    assert chat.column_names == ["messages"] and chat.num_rows == 2
    pairs = load_dataset(str(proposer), "prompt_completion", split="train", cache_dir=str(cache))
    assert pairs.column_names == ["prompt", "completion"]
    full = load_dataset(str(proposer), split="train", cache_dir=str(cache))
    assert "episode_id" in full.column_names and full.features["messages"] == chat.features["messages"]


def test_extra_per_episode_audit_fields_become_columns(proposer_run):
    """A field another stage adds to an episode's audit log is carried into the table; a field named
    like a typed column (the critic's labels, read from ``error_taxonomy``) does not override it."""
    import pandas as pd

    from teacher_assets.pipeline import write_proposer_dataset

    proposer, _ = proposer_run
    audit_path = proposer / "block_into_drawer" / "audit_log.json"
    audit = json.loads(audit_path.read_text())
    audit_path.write_text(json.dumps({**audit, "review_note": "grasp looked slippery",
                                      "critic_error_labels": ["made_up_label"]}))
    try:
        rows, _ = write_proposer_dataset(proposer)
        table = pd.read_parquet(proposer / "proposer_dataset.parquet").set_index("episode_id")
        assert table.loc["block_into_drawer", "review_note"] == "grasp looked slippery"
        assert pd.isna(table.loc["so100_cups_000000", "review_note"])
        assert list(table.loc["block_into_drawer", "critic_error_labels"]) == audit["error_taxonomy"]["raised"]
        assert "review_note" in (proposer / "README.md").read_text()
    finally:
        audit_path.write_text(json.dumps(audit))
        write_proposer_dataset(proposer)
