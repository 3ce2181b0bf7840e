"""Nightly refresh: re-run only the episodes that changed or failed, then rebuild the proposer dataset."""

from dagster import (AssetPartitionStatus, AssetRecordsFilter, DagsterEventType, DagsterInstance,
                     DefaultScheduleStatus, RunRequest, ScheduleEvaluationContext, schedule)

from .assets import episodes_partitions, oxe_episode, proposer_dataset
from .jobs import EPISODE_KEYS, EPISODE_TAG, episode_run_config, episode_runs_in_progress, teacher_job


def partition_histories(instance: DagsterInstance, partitions: list[str]) -> dict:
    """Episode id → ``PartitionHistory``: a few queries per asset, none per partition."""
    from teacher_assets.episodes.watch import PartitionHistory

    latest = {key: instance.get_latest_storage_id_by_partition(key, DagsterEventType.ASSET_MATERIALIZATION)
              for key in EPISODE_KEYS}
    recorded: dict[str, dict] = {}
    for record in _latest_records(instance, oxe_episode.key, latest[oxe_episode.key]):
        metadata = record.asset_materialization.metadata
        recorded[record.partition_key] = {name: metadata[key].value if key in metadata else None for name, key in
                                          (("fingerprint", "episode_fingerprint"), ("prompts", "teacher_prompts"))}
    # A run that planned bt_score for the episode and failed (a single-partition run stopped by a blocking
    # check or an error, or a range run that failed as a whole): Dagster's partition status says FAILED.
    failed = {eid for eid, status in (instance.get_status_by_partition(
        EPISODE_KEYS[-1], partitions, episodes_partitions) or {}).items() if status == AssetPartitionStatus.FAILED}
    # In a range run that succeeds, an episode that failed on its own still gets a bt_score, marked failed.
    failed |= {record.partition_key for record in _latest_records(instance, EPISODE_KEYS[-1], latest[EPISODE_KEYS[-1]])
               if _status(record) == "failed"}
    histories = {}
    for eid in partitions:
        stages = [latest[key][eid] for key in EPISODE_KEYS if eid in latest[key]]
        histories[eid] = PartitionHistory(
            episode_id=eid, score_storage_id=latest[EPISODE_KEYS[-1]].get(eid),
            latest_stage_storage_id=max(stages) if stages else None,
            recorded_fingerprint=recorded.get(eid, {}).get("fingerprint"),
            recorded_prompts=recorded.get(eid, {}).get("prompts"),
            last_run_failed=eid in failed)
    return histories


def _latest_records(instance: DagsterInstance, asset_key, storage_ids: dict[str, int]) -> list:
    """The materialization records with these storage ids (one query)."""
    if not storage_ids:
        return []
    return instance.fetch_materializations(AssetRecordsFilter(asset_key=asset_key, storage_ids=list(storage_ids.values())),
                                           limit=len(storage_ids)).records


def _status(record) -> str:
    value = record.asset_materialization.metadata.get("episode_status")
    return value.value if value is not None else ""


@schedule(
    name="nightly_teacher_refresh", cron_schedule="0 2 * * *", execution_timezone="UTC", job=teacher_job,
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        "02:00 UTC: re-runs the episode partitions that never reached bt_score (never run, or stopped by a "
        "blocking check), whose last run failed or stopped early, or whose folder content differs from the "
        "fingerprint recorded on their last oxe_episode materialization, or whose run used other prompt "
        "versions than teacher_assets/prompts/ has now; skips partitions with a run in "
        "progress; then rebuilds proposer_dataset. Unchanged partitions are not re-run (and would hit the "
        "LLM cache if they were). New folders are the episode_folder_sensor's (or the manager CLI's) job. "
        "Stopped by default: it spends LLM tokens."
    ),
)
def nightly_teacher_refresh(context: ScheduleEvaluationContext):
    from teacher_assets.episodes.watch import episodes_root, fingerprint_for, refresh_reason, teacher_prompt_versions

    instance = context.instance
    root = episodes_root()
    night = context.scheduled_execution_time.strftime("%Y-%m-%d") if context.scheduled_execution_time else "adhoc"
    busy = {r.tags.get("dagster/partition") for r in episode_runs_in_progress(instance)}
    partitions = [p for p in instance.get_dynamic_partitions(episodes_partitions.name) if p not in busy]
    requests, prompts = [], teacher_prompt_versions()
    for eid, history in partition_histories(instance, partitions).items():
        fingerprint = fingerprint_for(root, eid)
        reason = refresh_reason(history, fingerprint, prompts)
        if reason is None:
            continue
        requests.append(RunRequest(
            run_key=f"{eid}@{night}:{fingerprint[:12]}", partition_key=eid, asset_selection=EPISODE_KEYS,
            run_config=episode_run_config(str(root)),
            tags={EPISODE_TAG: eid, "teacher/episode_fingerprint": fingerprint, "teacher/refresh_reason": reason,
                  "teacher/launched_by": "nightly_teacher_refresh"}))
    context.log.info(f"re-running {len(requests)} of {len(partitions)} episode partitions")
    # Runs in parallel with the re-runs above; the episode sensor (when on) rebuilds again once they finish.
    requests.append(RunRequest(run_key=f"proposer_dataset@{night}", asset_selection=[proposer_dataset.key],
                               tags={"teacher/launched_by": "nightly_teacher_refresh"}))
    return requests
