"""The teacher's job, and what sensor and schedule ask the instance about it.

One asset job covers the whole teacher group: a run request selects either one episode's chain
(``EPISODE_ASSETS`` with their blocking checks, for one partition) or the unpartitioned
``proposer_dataset``.
"""

from dagster import AssetSelection, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter, define_asset_job

from .assets import EPISODE_ASSETS, GROUP, proposer_dataset

EPISODE_TAG = "teacher/episode"  # also set by teacher_assets.manager on its runs
EPISODE_KEYS = [a.key for a in EPISODE_ASSETS]
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
NOT_FINISHED = [s for s in DagsterRunStatus if s not in FINISHED]

teacher_job = define_asset_job(
    "teacher_job", selection=AssetSelection.groups(GROUP),
    description="The agentic teacher: one episode's chain (with its blocking checks) per partition, or the proposer dataset.",
)


def episode_run_config(episodes_dir: str) -> dict:
    return {"ops": {"oxe_episode": {"config": {"episodes_dir": episodes_dir}}}}


def is_episode_run(run: DagsterRun) -> bool:
    """A run that materializes (part of) an episode's chain: ours, the manager CLI's, or the UI's."""
    if EPISODE_TAG in run.tags:
        return True
    if run.asset_selection is not None:
        return bool(run.asset_selection & set(EPISODE_KEYS))
    return run.job_name == teacher_job.name


def episode_runs_in_progress(instance: DagsterInstance) -> list[DagsterRun]:
    runs = instance.get_runs(RunsFilter(statuses=NOT_FINISHED))
    return [r for r in runs if is_episode_run(r)]


def latest_storage_id(instance: DagsterInstance, asset_key) -> int:
    records = instance.fetch_materializations(asset_key, limit=1).records
    return records[0].storage_id if records else 0


def dataset_is_stale(instance: DagsterInstance) -> tuple[bool, int]:
    """Whether an episode's outcome was written (bt_score) after the proposer dataset was last built."""
    score = latest_storage_id(instance, EPISODE_KEYS[-1])
    return score > latest_storage_id(instance, proposer_dataset.key), score
