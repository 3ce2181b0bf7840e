"""The teacher CLI as a user runs it: a subprocess on its own Dagster home and datasets root."""

import os
import shutil
import subprocess
import sys

from dagster import AssetKey, DagsterInstance, RunsFilter

from resources.paths import PROJECT_ROOT
from teacher_assets.manager import RANGE_END_TAG, RANGE_START_TAG

SAMPLES = PROJECT_ROOT / "datasets" / "oxe"


def test_cli_runs_episodes_through_dagster_and_prints_a_summary(tmp_path, monkeypatch):
    episodes = tmp_path / "episodes"
    for name in ("pick_cup_place_tray", "screw_light_bulb"):
        shutil.copytree(SAMPLES / name, episodes / name)
    empty = episodes / "empty_instruction"
    shutil.copytree(SAMPLES / "lamp_on", empty)
    (empty / "instruction.txt").write_text("   \n")
    home, data = tmp_path / "dagster_home", tmp_path / "datasets"
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHGEN_DATASETS": str(data)}
    env.pop("BENCHGEN_LLM_MODEL", None)

    out = subprocess.run([sys.executable, "-m", "teacher_assets.manager", "run", "--episodes", str(episodes),
                          "--workers", "2"], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "3 episodes from" in text
    assert "pick_cup_place_tray: accepted" in text
    assert "screw_light_bulb: skipped" in text and "'screw'" in text
    assert "empty_instruction: invalid" in text and "empty_instruction" in text
    for line in ("accepted  1", "skipped   1", "invalid   1", "rejected  0", "repaired  0", "tokens", "episodes/min"):
        assert line in text, line
    assert (data / "proposer" / "pick_cup_place_tray" / "bt.xml").is_file()
    assert (data / "proposer" / "proposer_dataset.parquet").is_file()

    # The runs are in the instance the UI reads: 2 workers → a range run of 2 episodes and a run of 1,
    # plus the dataset run; every episode is still its own partition of every episode asset.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    episodes_ids = ["empty_instruction", "pick_cup_place_tray", "screw_light_bulb"]
    with DagsterInstance.get() as instance:
        assert sorted(instance.get_dynamic_partitions("episodes")) == episodes_ids
        runs = instance.get_runs(RunsFilter(tags={"teacher/launched_by": "teacher_assets.manager"}))
        assert len(runs) == 3 and all(r.is_success for r in runs)
        ranges = [(r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG)) for r in runs]
        assert ("empty_instruction", "pick_cup_place_tray") in ranges
        assert any(r.tags.get("dagster/partition") == "screw_light_bulb" for r in runs)
        for asset in ("oxe_episode", "bt_xml", "bt_score"):
            assert sorted(instance.get_materialized_partitions(AssetKey(asset))) == episodes_ids


def test_cli_rejects_a_missing_folder(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"), "BENCHGEN_DATASETS": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "teacher_assets.manager", "run", "--episodes", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=120)
    assert out.returncode == 2 and "is not a folder" in out.stderr
