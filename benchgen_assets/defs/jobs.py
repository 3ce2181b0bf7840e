"""The scenario generator's job, and what its sensor and schedule ask the instance.

One asset job covers the whole group: a run request selects either one scenario's chain
(``CHAIN_KEYS`` with their blocking checks, for one partition) or the unpartitioned tables.
"""

from dagster import AssetSelection, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter, define_asset_job

from .assets import scenario_assets, table_assets
from .partitions import GROUP

SCENARIO_TAG = "benchgen/scenario"
CHAIN_KEYS = [a.key for a in scenario_assets]
TABLE_KEYS = [a.key for a in table_assets]
FAILED = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
FINISHED = {DagsterRunStatus.SUCCESS, *FAILED}

scenario_job = define_asset_job(
    "scenario_job", selection=AssetSelection.groups(GROUP),
    description="The scenario generator: one scenario's chain (with its blocking checks) per partition, "
                "or the manifest and traces tables.",
)


def open_attempts(instance: DagsterInstance) -> dict[str, list[DagsterRun]]:
    """Scenario id → the runs that planned one of its chain stages and did not (yet) materialize it:
    in progress, or failed / canceled. Asset-based, so it sees every launcher's runs (sensor, schedule,
    UI, the CLI's ``materialize``, whose runs carry no asset selection)."""
    run_ids: dict[str, set[str]] = {}
    for key in CHAIN_KEYS:
        attempts = instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(key)
        for partition, (run_id, _storage_id) in attempts.items():
            run_ids.setdefault(partition, set()).add(run_id)
    wanted = set().union(*run_ids.values()) if run_ids else set()
    runs = {r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=sorted(wanted)))} if wanted else {}
    return {partition: [runs[i] for i in sorted(ids) if i in runs] for partition, ids in run_ids.items()}


def partitions_in_progress(attempts: dict[str, list[DagsterRun]]) -> set[str]:
    return {p for p, runs in attempts.items() if any(r.status not in FINISHED for r in runs)}


def _latest_storage_id(instance: DagsterInstance, asset_key) -> int:
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0].storage_id if records else 0


def tables_are_stale(instance: DagsterInstance) -> tuple[bool, int]:
    """Whether any scenario stage was materialized after the manifest; and the newest such storage id."""
    newest = max(_latest_storage_id(instance, key) for key in CHAIN_KEYS)
    return newest > min(_latest_storage_id(instance, key) for key in TABLE_KEYS), newest
