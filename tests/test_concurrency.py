"""Concurrency as the daemon enforces it, on the project's instance settings with smaller limits:
a backfill of six episode partitions (as launched from the UI) is split by the episode assets'
backfill policy into runs over ranges of two partitions, which run side by side but at most
``max_concurrent_runs`` at once, and the LLM-calling steps of all runs share the ``llm`` pool
(limit 1 here: never two at the same time, whatever run they belong to)."""

from __future__ import annotations

import shutil
import time

import pytest
import yaml

from resources.dagster_resources import LLM_POOL
from resources.paths import PROJECT_ROOT
from teacher_assets.defs.assets import EPISODES_PER_RUN_ENV
from tests.webserver import LAUNCH_BACKFILL, graphql, most_at_once, running_dagster_dev

EPISODES = ["pick_cup_place_tray", "apple_into_bowl", "open_drawer", "lamp_on", "stove_off", "close_cabinet_door"]
MAX_RUNS, LLM_LIMIT, PER_RUN = 2, 1, 2
BACKFILL_RUNS = """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results {
    runId status startTime endTime tags { key value } stepStats { stepKey status startTime endTime } } } } }"""
ASSET_POOLS = """{ assetNodes { assetKey { path } pools } }"""


@pytest.mark.slow
def test_backfill_runs_in_parallel_under_the_queue_limit_and_llm_steps_share_the_pool(tmp_path):
    home, datasets = tmp_path / "dagster_home", tmp_path / "datasets"
    home.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    config["concurrency"]["runs"]["max_concurrent_runs"] = MAX_RUNS
    config["concurrency"]["pools"]["default_limit"] = LLM_LIMIT
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    for name in EPISODES:
        shutil.copytree(PROJECT_ROOT / "datasets" / "oxe" / name, datasets / "oxe" / name)
    env = {"BENCHGEN_DATASETS": str(datasets), "BENCHGEN_EPISODES_DIR": str(datasets / "oxe"),
           "MUJOCO_GL": "osmesa", "LITELLM_LOCAL_MODEL_COST_MAP": "True", EPISODES_PER_RUN_ENV: str(PER_RUN)}

    from dagster import DagsterInstance

    from teacher_assets.defs.assets import episodes_partitions
    from teacher_assets.defs.jobs import EPISODE_KEYS

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(episodes_partitions.name, EPISODES)

    with running_dagster_dev(home, tmp_path / "dagster_dev.log", env) as url:
        pools = {"/".join(n["assetKey"]["path"]): set(n["pools"]) for n in graphql(url, ASSET_POOLS)["assetNodes"]}
        in_pool = {key for key, p in pools.items() if LLM_POOL in p}  # as the webserver sees both locations
        assert in_pool == {"scenario_plan", "scenario_script", "feasibility", "scene_report", "bt_draft", "refined_bt",
                           "bt_xml", "bt_score"}
        llm_steps = in_pool & {key.to_user_string() for key in EPISODE_KEYS}

        launched = graphql(url, LAUNCH_BACKFILL, {"params": {
            "partitionNames": EPISODES, "fromFailure": False,
            "assetSelection": [{"path": key.path} for key in EPISODE_KEYS]}})["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        tags = [{"key": "dagster/backfill", "value": launched["backfillId"]}]

        deadline = time.monotonic() + 420
        while True:
            runs = graphql(url, BACKFILL_RUNS, {"tags": tags})["runsOrError"]["results"]
            if len(runs) == len(EPISODES) // PER_RUN and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs):
                break
            assert time.monotonic() < deadline, f"backfill not done: {[(r['runId'], r['status']) for r in runs]}"
            time.sleep(2)

    assert [r["status"] for r in runs] == ["SUCCESS"] * (len(EPISODES) // PER_RUN), runs
    # Each run covers a range of two neighbouring partitions; together they cover every episode once.
    ranges = [tuple(next(t["value"] for t in r["tags"] if t["key"] == f"dagster/asset_partition_range_{end}")
                    for end in ("start", "end")) for r in runs]
    assert sorted(ranges) == sorted(zip(EPISODES[::2], EPISODES[1::2]))
    # Runs: in parallel, but never more than the queue allows.
    assert most_at_once([(r["startTime"], r["endTime"]) for r in runs]) == MAX_RUNS
    # LLM steps: across all runs, never more than the pool's limit at once.
    llm_spans = [(s["startTime"], s["endTime"]) for r in runs for s in r["stepStats"] if s["stepKey"] in llm_steps]
    assert len(llm_spans) == len(EPISODES) // PER_RUN * len(llm_steps)
    assert most_at_once(llm_spans) == LLM_LIMIT
