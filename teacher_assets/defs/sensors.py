"""Episode-folder sensor: a new (or changed) episode folder adds its partition and requests its run."""

import time

from dagster import (DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason,
                     sensor)

from .assets import episodes_partitions, proposer_dataset
from .jobs import EPISODE_KEYS, EPISODE_TAG, dataset_is_stale, episode_run_config, episode_runs_in_progress, teacher_job


@sensor(
    name="episode_folder_sensor", job=teacher_job, minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Watches the episodes root ($BENCHGEN_EPISODES_DIR, default <datasets>/oxe). A new episode folder "
        "gets its `episodes` partition and one run of its chain; a folder whose content changed is run again. "
        "Folders still being written (anything modified in the last $BENCHGEN_EPISODES_SETTLE_SECONDS, default "
        "30 s) wait; at most $BENCHGEN_EPISODES_PER_TICK (default 20) folders per tick, the rest next tick. "
        "Invalid episodes get their partition and one run that records why; they are not retried until they "
        "change. When episode runs have written outcomes and none is still running, the proposer dataset is "
        "rebuilt. Stopped by default: turn it on in the UI (Automation) once the root is where you want it."
    ),
)
def episode_folder_sensor(context: SensorEvaluationContext):
    from teacher_assets.episodes.watch import EpisodeCursor, episodes_root, per_tick_limit, plan_tick, settle_seconds

    root = episodes_root()
    before = EpisodeCursor.parse(context.cursor)
    plan = plan_tick(root, before, now=time.time(), settle_s=settle_seconds(),
                     limit=per_tick_limit())
    if plan.unsettled or plan.deferred:
        context.log.info(f"still being written: {plan.unsettled}; over this tick's limit: {plan.deferred}")
    known = set(context.instance.get_dynamic_partitions(episodes_partitions.name))
    new_partitions = [r.episode_id for r in plan.requests if r.episode_id not in known]
    run_requests = [
        RunRequest(run_key=r.run_key, partition_key=r.episode_id, asset_selection=EPISODE_KEYS,
                   run_config=episode_run_config(str(root)),
                   tags={EPISODE_TAG: r.episode_id, "teacher/episode_fingerprint": r.fingerprint,
                         "teacher/launched_by": "episode_folder_sensor", "teacher/changed": str(r.changed).lower()})
        for r in plan.requests
    ]
    # The dataset reads every episode's outcome from disk: rebuild it once the episode runs are done.
    if not run_requests:
        stale, score_id = dataset_is_stale(context.instance)
        if stale and not episode_runs_in_progress(context.instance):
            run_requests.append(RunRequest(run_key=f"proposer_dataset@{score_id}", asset_selection=[proposer_dataset.key],
                                           tags={"teacher/launched_by": "episode_folder_sensor"}))
    if not run_requests and plan.cursor == before:
        return SkipReason(f"no new or changed settled episode folders in {root}")
    return SensorResult(
        run_requests=run_requests, cursor=plan.cursor.model_dump_json(),
        dynamic_partitions_requests=[episodes_partitions.build_add_request(new_partitions)] if new_partitions else [],
    )
