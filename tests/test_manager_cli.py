"""``python -m benchgen_assets.manager generate`` as a user runs it: a subprocess with its own
DAGSTER_HOME and datasets root; the runs must be recorded in that instance."""

import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from dagster import DagsterInstance, RunsFilter

from benchgen_assets.manager import make_requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_request_ids_are_stable_and_distinct():
    a = make_requests(tier=1, family=None, prompt=None, count=3, seed=0, variants=2)
    assert [r.scenario_id for r in a] == ["t1-s0-000", "t1-s0-001", "t1-s0-002"]
    assert [r.seed for r in a] == [0, 1, 2]
    levers = make_requests(tier=2, family=None, prompt="10 levers, tier 2", count=1, seed=5, variants=1)
    assert levers[0].scenario_id == "t2-10-levers-tier-2-s5-000" and levers[0].prompt == "10 levers, tier 2"


def _generate(tmp_path, *args: str):
    """The CLI in a subprocess with its own DAGSTER_HOME and datasets root (offline author)."""
    home, datasets = tmp_path / "dagster_home", tmp_path / "datasets"
    env = {**os.environ, "DAGSTER_HOME": str(home), "BENCHGEN_DATASETS": str(datasets)}
    env.pop("BENCHGEN_LLM_MODEL", None)
    proc = subprocess.run([sys.executable, "-m", "benchgen_assets.manager", "generate", "--tier", "1", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=540)
    return proc, home, datasets


@pytest.mark.slow
def test_generate_two_scenarios_through_dagster(tmp_path, monkeypatch):
    proc, home, datasets = _generate(tmp_path, "--count", "2", "--variants", "2", "--parallel", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "[1/2]" in out and "[2/2]" in out and "== summary ==" in out
    assert re.search(r"variants:  [1-4]/4 valid, yield \d+%", out), out
    assert "wall time:" in out and re.search(r"tokens:    [1-9]\d*;", out)

    manifest = pd.read_parquet(datasets / "benchmarks" / "manifest.parquet")
    assert sorted(manifest["scenario_id"].unique()) == ["t1-s0-000", "t1-s0-001"] and len(manifest) == 4

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    assert set(instance.get_dynamic_partitions("scenarios")) == {"t1-s0-000", "t1-s0-001"}
    runs = instance.get_runs(RunsFilter(tags={"benchgen/cli": "generate"}))
    partition_runs = [r for r in runs if r.tags.get("dagster/partition")]
    assert sorted(r.tags["dagster/partition"] for r in partition_runs) == ["t1-s0-000", "t1-s0-001"]
    assert all(r.is_success for r in runs) and len(runs) == 3  # two partitions + the tables


@pytest.mark.slow
def test_generate_runs_one_range_run_per_worker(tmp_path, monkeypatch):
    """One worker, three scenarios: one Dagster run over the range of their partitions (plus the
    tables), each scenario still reported, materialized and checked as its own partition."""
    proc, home, datasets = _generate(tmp_path, "--count", "3", "--variants", "1", "--parallel", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert ": 1 run(s), 1 in parallel" in proc.stdout and "[3/3]" in proc.stdout
    assert "emitted no result" not in proc.stdout + proc.stderr

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    runs = instance.get_runs(RunsFilter(tags={"benchgen/cli": "generate"}))
    ranged = [r for r in runs if r.tags.get("dagster/asset_partition_range_start")]
    assert len(runs) == 2 and len(ranged) == 1 and all(r.is_success for r in runs)
    assert (ranged[0].tags["dagster/asset_partition_range_start"],
            ranged[0].tags["dagster/asset_partition_range_end"]) == ("t1-s0-000", "t1-s0-002")
    from dagster import AssetKey

    for key in ("validated_scenario", "scenario_preview"):
        records = instance.fetch_materializations(AssetKey(key), limit=10).records
        assert sorted(r.partition_key for r in records) == ["t1-s0-000", "t1-s0-001", "t1-s0-002"]
    manifest = pd.read_parquet(datasets / "benchmarks" / "manifest.parquet")
    assert len(manifest) == 3 and manifest["passed"].all()


def test_range_runs_are_balanced_over_the_workers_and_keep_neighbours_together():
    from benchgen_assets.manager import balanced_batches

    order = [f"s{i:02d}" for i in range(12)]
    assert [len(b) for b in balanced_batches(order, order[:10], 3, 50)] == [4, 3, 3]
    assert balanced_batches(order, order[:10], 3, 2) == [order[i:i + 2] for i in range(0, 10, 2)]
    # s05 is not asked for: a range run never spans it
    batches = balanced_batches(order, order[:5] + order[6:9], 2, 50)
    assert batches == [order[0:3], order[3:5], order[6:9]]
    assert balanced_batches(order, ["s03"], 3, 50) == [["s03"]]
