"""What a batch left behind, read back for tests and benchmarks: the Dagster instance's latest
metadata per partition, and the faults the offline author injected (from the LLM traces)."""

from __future__ import annotations

import json
import os
from collections import Counter
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def instance_at(home: Path):
    """The Dagster instance in ``home`` (the project's dagster.yaml puts its storage in ``$DAGSTER_HOME``)."""
    from dagster import DagsterInstance

    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = DagsterInstance.get()
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved
    with instance:
        yield instance


def latest_metadata(home: Path, asset: str) -> dict[str, dict]:
    """The newest materialization's metadata of ``asset`` per partition, from the instance in ``home``."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterEventType

    with instance_at(home) as instance:
        latest = instance.get_latest_storage_id_by_partition(AssetKey(asset), DagsterEventType.ASSET_MATERIALIZATION)
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(asset), storage_ids=list(latest.values())), limit=len(latest)
        ).records if latest else []
    return {r.partition_key: {k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records}


def injected_faults(datasets: Path) -> Counter:
    """Provider errors and unparseable replies the offline author injected, as the traces recorded them."""
    kinds: Counter = Counter()
    for path in (datasets / "traces" / "llm").rglob("*.jsonl"):
        for record in map(json.loads, path.read_text().splitlines()):
            if record["outcome"] == "provider_error" and "injected timeout" in record["error"]:
                kinds["timeout"] += 1
            elif record["outcome"] == "provider_error" and "injected rate limit" in record["error"]:
                kinds["rate_limit"] += 1
            elif record["outcome"] == "parse_error" and "injected malformed reply" in record["reply"]:
                kinds["malformed"] += 1
    return kinds
