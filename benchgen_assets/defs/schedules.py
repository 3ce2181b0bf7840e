"""Nightly refresh: re-run only the scenarios that never finished, failed, or whose inputs changed;
then rebuild the manifest and traces."""

from dagster import (AssetRecordsFilter, DagsterEventType, DagsterInstance, DefaultScheduleStatus, RunRequest,
                     ScheduleEvaluationContext, schedule)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from .assets import scenario_preview, validated_scenario
from .checks import validation_checks
from .jobs import CHAIN_KEYS, FAILED, SCENARIO_TAG, TABLE_KEYS, open_attempts, partitions_in_progress, scenario_job
from .partitions import scenario_partitions
from .sensors import LAUNCHED_BY


def _recorded(instance: DagsterInstance, storage_ids: dict[str, int]) -> dict[str, dict]:
    """Partition → the ``input_fingerprint`` / ``family`` metadata of its latest validated_scenario."""
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=validated_scenario.key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids)).records
    out = {}
    for record in records:
        md = record.asset_materialization.metadata
        out[record.partition_key] = {k: md[k].value if k in md else None for k in ("input_fingerprint", "family")}
    return out


def partition_histories(instance: DagsterInstance, partitions: list[str], attempts: dict[str, list]) -> dict:
    """Scenario id → ``PartitionHistory``: a few queries per asset, none per partition."""
    from benchgen_assets.refresh import PartitionHistory

    latest = {key: instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
              for key in CHAIN_KEYS}
    recorded = _recorded(instance, latest[validated_scenario.key])
    failed_checks: dict[str, list[str]] = {}
    for info in instance.event_log_storage.get_asset_check_partition_info(
            list(validation_checks.check_keys), partition_keys=partitions):
        if info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED:
            failed_checks.setdefault(info.partition_key, []).append(info.check_key.name)
    return {sid: PartitionHistory(
        scenario_id=sid,
        stage_storage_ids={key.to_user_string(): latest[key][sid] for key in CHAIN_KEYS if sid in latest[key]},
        preview_storage_id=latest[scenario_preview.key].get(sid), failed_checks=failed_checks.get(sid, []),
        last_run_failed=any(r.status in FAILED for r in attempts.get(sid, [])),
        recorded_fingerprint=recorded.get(sid, {}).get("input_fingerprint"),
        recorded_family=recorded.get(sid, {}).get("family") or None,
    ) for sid in partitions}


@schedule(
    name="nightly_scenario_refresh", cron_schedule="0 3 * * *", execution_timezone="UTC", job=scenario_job,
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        "03:00 UTC: re-runs the scenario partitions that were never materialized, whose last run failed, whose "
        "blocking checks failed, whose chain stopped before the preview, or whose inputs differ from the "
        "`input_fingerprint` recorded on their last validated_scenario (saved request, family script, prompt "
        "versions); skips partitions with a run in progress or without a saved request; then rebuilds the "
        "manifest and traces. Unchanged partitions are not re-run (and would hit the LLM cache if they were). "
        "Re-runs use the saved request, not a past run's Launchpad plan edits or code override. "
        "Stopped by default: it spends LLM tokens."
    ),
)
def nightly_scenario_refresh(context: ScheduleEvaluationContext):
    from benchgen_assets.pipeline import RequestError, load_request
    from benchgen_assets.refresh import input_fingerprint, refresh_reason

    instance = context.instance
    night = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "adhoc"
    attempts = open_attempts(instance)
    busy = partitions_in_progress(attempts)
    partitions = [p for p in instance.get_dynamic_partitions(scenario_partitions.name) if p not in busy]
    requests = []
    for sid, history in partition_histories(instance, partitions, attempts).items():
        try:
            request = load_request(sid)
        except (RequestError, ValueError) as e:  # e.g. a UI partition never given a request: nothing to re-run
            context.log.warning(f"not refreshing {sid}: {e}")
            continue
        fingerprint = input_fingerprint(request, history.recorded_family)
        reason = refresh_reason(history, fingerprint)
        if reason is None:
            continue
        requests.append(RunRequest(
            run_key=f"{sid}@{night}:{fingerprint[:12]}", partition_key=sid, asset_selection=CHAIN_KEYS,
            tags={SCENARIO_TAG: sid, "benchgen/input_fingerprint": fingerprint, "benchgen/refresh_reason": reason,
                  LAUNCHED_BY: "nightly_scenario_refresh"}))
    context.log.info(f"re-running {len(requests)} of {len(partitions)} scenario partitions")
    # Runs alongside the re-runs; the request sensor (when on) rebuilds the tables again once they finish.
    requests.append(RunRequest(run_key=f"tables@{night}", asset_selection=TABLE_KEYS,
                               tags={LAUNCHED_BY: "nightly_scenario_refresh"}))
    return requests
