"""CLI: run the agentic teacher over a folder of episodes through Dagster; import robot datasets.

    python -m teacher_assets.manager run [--episodes DIR] [--workers N]
    python -m teacher_assets.manager import --from rlds|lerobot SRC --out DIR [--camera NAME]

Discovers the episodes, adds their partitions to the project's Dagster instance and materializes
every episode's chain of assets (with its blocking checks) as a few Dagster runs over partition
ranges, one per worker process (at most ``$BENCHGEN_EPISODES_PER_RUN`` episodes each) — every
episode stays its own partition with its lineage in the UI — then the proposer dataset, and prints
progress and a summary (accepted / skipped / invalid / rejected / repaired with reasons, tokens,
wall time).
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from resources.atomic import DatasetWriteError, remove_stale_scratch, require_writable
from resources.llm_options import LLMOptions, add_llm_arguments, llm_options
from resources.paths import datasets_root, ensure_dagster_home
from resources.run_workers import (PreforkedPool, loaded_for_life, preload_table_libraries, process_instance,
                                   quiet_range_check_notices, report_dead_worker_runs, worker_tags)

RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
# The CLI prints each episode's outcome and reason itself; the full logs and tracebacks are in the UI.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class EpisodeRun(BaseModel):
    episode_id: str
    run_id: str
    success: bool
    status: str  # the episode's status; "failed" when a stage raised or a blocking check failed
    reason: str = ""
    repaired: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall time of the run the episode was part of


class RunOptions(BaseModel):
    episodes_dir: str
    llm: LLMOptions = LLMOptions()  # injected faults, retries
    strict: bool = True
    calls_in_flight: int = 1  # LLMResource.calls_in_flight: for a hosted model
    max_rpm: Optional[float] = None  # LLMResource.max_rpm: the provider's requests-per-minute limit


def episode_ids(episodes_dir: Path, out=sys.stdout) -> list[str]:
    """The folder's episode ids, without loading the episodes (the ``oxe_episode`` asset does that, in
    the runs, and records an invalid one with its reason)."""
    from teacher_assets.episodes.loader import episode_id_for
    from teacher_assets.episodes.watch import list_episode_folders

    folders = list_episode_folders(episodes_dir)
    used = {f.path for f in folders.values()}
    for folder in sorted(p for p in episodes_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if str(folder) not in used:
            why = "another folder gives the same episode id" if episode_id_for(folder.name) else "no episode id"
            print(f"ignored: {folder}: {why}", file=out)
    return list(folders)


def plan_batches(partition_order: list[str], episode_ids: list[str], batch_size: int) -> list[list[str]]:
    """Runs to launch: each a range of partitions that are next to each other in the instance's
    order (a range run covers every partition between its ends) and holds at most ``batch_size``."""
    position = {key: i for i, key in enumerate(partition_order)}
    batches: list[list[str]] = []
    for key in sorted(episode_ids, key=position.__getitem__):
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and position[last[-1]] == position[key] - 1:
            last.append(key)
        else:
            batches.append([key])
    return batches


def _episode_runs(result, batch: list[str], seconds: float) -> list[EpisodeRun]:
    """Each episode's outcome in a run: its final state, or why the run stopped it."""
    runs = []
    states = {}
    if result.success:
        value = result.output_for_node("bt_score")
        states = value if len(batch) > 1 else {batch[0]: value}
    failed_checks: dict[Optional[str], list[str]] = {}
    for e in result.get_asset_check_evaluations():
        if not e.passed:
            failed_checks.setdefault(e.partition, []).append(e.check_name)
    # The user code's error, not Dagster's wrapper around it (e.g. a full disk, named with its path).
    step_errors = [f"{e.step_key}: {(e.event_specific_data.error.cause or e.event_specific_data.error).message.strip().splitlines()[-1]}"
                   for e in result.all_events if e.is_step_failure and e.event_specific_data.error]
    for key in batch:
        run = EpisodeRun(episode_id=key, run_id=result.run_id, success=result.success, status="failed",
                         seconds=round(seconds, 2))
        state = states.get(key)
        if state is not None:
            run.status, run.reason, run.repaired = state.status, state.reason or "", state.repaired
            run.prompt_tokens = sum(c.prompt_tokens for c in state.audit)
            run.completion_tokens = sum(c.completion_tokens for c in state.audit)
            run.success = state.status != "failed"
        else:
            checks = failed_checks.get(key) or failed_checks.get(None)
            run.reason = f"failed checks: {', '.join(checks)}" if checks else f"failed step {'; '.join(step_errors)}"
        runs.append(run)
    return runs


def _materialize_batch(batch: list[str], options: RunOptions) -> list[EpisodeRun]:
    """One Dagster run: every episode asset and check over a range of partitions, in the project instance."""
    from dagster import materialize

    from resources.dagster_resources import LLMResource, shared_resources
    from teacher_assets.defs.assets import EPISODE_ASSETS
    from teacher_assets.defs.checks import TEACHER_CHECKS

    started = time.monotonic()
    quiet_range_check_notices()
    tags = {"teacher/launched_by": "teacher_assets.manager", **worker_tags()}
    if len(batch) == 1:
        tags["teacher/episode"] = batch[0]
    else:
        tags.update({RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]})
    result = materialize(
        [*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=batch[0] if len(batch) == 1 else None,
        instance=process_instance(), tags=tags, raise_on_error=False,
        resources={**shared_resources(),
                   "llm": LLMResource(**options.llm.resource_fields(), calls_in_flight=options.calls_in_flight,
                                      max_rpm=options.max_rpm)},
        run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": options.episodes_dir}},
                            "bt_draft": {"config": {"strict": options.strict}}},
                    **QUIET},
    )
    return _episode_runs(result, batch, time.monotonic() - started)


def _materialize_dataset() -> dict:
    from dagster import materialize

    from teacher_assets.defs.assets import proposer_dataset

    result = materialize([proposer_dataset], instance=process_instance(), tags={"teacher/launched_by": "teacher_assets.manager"},
                         run_config=QUIET)
    return result.output_for_node("proposer_dataset")


def warm_up() -> None:
    """Pay the heavy imports once before forking the workers (they inherit them): Dagster and the
    teacher's definitions, the stages, litellm; loaded for the life of the process (``loaded_for_life``)."""
    from resources.llm.client import warm_up_litellm

    with loaded_for_life():
        import teacher_assets.defs.assets  # noqa: F401
        import teacher_assets.defs.checks  # noqa: F401
        import teacher_assets.pipeline  # noqa: F401

        warm_up_litellm()


def run(episodes_dir: Path, *, workers: int = 2, options: Optional[RunOptions] = None, out=sys.stdout) -> dict:
    from resources.instance_settings import use_cli_instance_settings

    ensure_dagster_home()
    use_cli_instance_settings()  # the forked workers inherit it
    require_writable(datasets_root())  # a read-only or full datasets disk: one clear error before any work
    remove_stale_scratch(datasets_root())  # half-written files of an earlier run that was killed
    episodes_dir = episodes_dir.resolve()
    options = options or RunOptions(episodes_dir=str(episodes_dir))
    ids = episode_ids(episodes_dir, out)
    if not ids:
        print(f"no episodes in {episodes_dir}", file=out)
        return {}
    # The workers' parent starts now and pays the heavy imports (warm_up) while this process opens the
    # instance and adds the partitions; the workers are forked from it and inherit its imports, and
    # end without an interpreter teardown (1.5-2.5 s each with litellm and Dagster loaded). No SQLite
    # connection crosses a fork: each worker opens its own instance, the storage's engines are per process.
    with PreforkedPool(warm_up, multiprocessing.get_context("fork")) as pool:
        from teacher_assets.defs.assets import episodes_partitions, episodes_per_run

        instance = process_instance()
        report_dead_worker_runs(instance, out)  # an earlier run whose worker was killed
        known = set(instance.get_dynamic_partitions(episodes_partitions.name))
        instance.add_dynamic_partitions(episodes_partitions.name, [i for i in ids if i not in known])
        order = instance.get_dynamic_partitions(episodes_partitions.name)
        batches = plan_batches(order, ids, min(episodes_per_run(), math.ceil(len(ids) / workers)))
        print(f"{len(ids)} episodes from {episodes_dir}; {len(batches)} run(s) over {workers} worker(s); "
              f"DAGSTER_HOME={ensure_dagster_home()}", file=out)

        with loaded_for_life():  # what this process loaded stays: out of the collector's passes and its exit's
            preload_table_libraries()  # for the proposer dataset, while the workers' parent still warms up
        started = time.monotonic()
        runs: list[EpisodeRun] = []
        for batch, done, error in pool.map_unordered(min(workers, len(batches)),
                                                     functools.partial(_materialize_batch, options=options), batches):
            if error:  # a crashed or killed worker loses its batch, not the others
                done = [EpisodeRun(episode_id=i, run_id="", success=False, status="failed", reason=error)
                        for i in batch]
            for r in done:
                runs.append(r)
                flag = " (repaired)" if r.repaired else ""
                why = f" — {r.reason}" if r.status != "accepted" else ""
                print(f"[{len(runs)}/{len(ids)}] {r.episode_id}: {r.status}{flag}{why}", file=out, flush=True)
    if any(not r.run_id for r in runs):  # a worker died mid-run: its Dagster run ends FAILED now, not never
        report_dead_worker_runs(process_instance(), out)
    marker = f"{DatasetWriteError.__name__}: "
    disk = next((r.reason.split(marker, 1)[1] for r in runs if marker in r.reason), None)
    if disk:  # the datasets disk filled up (or turned read-only) during the runs: say so once, plainly
        print(f"\nerror: {disk}\n(the proposer dataset was not rebuilt; free space or fix the folder, then run "
              "again: finished stages come from the LLM cache)", file=out)
        return {"runs": [r.model_dump() for r in runs], "disk_error": disk, "wall_s": time.monotonic() - started}
    summary = _materialize_dataset()
    wall = time.monotonic() - started

    by_status: dict[str, list[EpisodeRun]] = {}
    for r in runs:
        by_status.setdefault(r.status, []).append(r)
    tokens_in, tokens_out = sum(r.prompt_tokens for r in runs), sum(r.completion_tokens for r in runs)
    print("\nsummary", file=out)
    for status in ("accepted", "skipped", "invalid", "rejected", "failed"):
        items = by_status.get(status, [])
        print(f"  {status:9s} {len(items)}", file=out)
        if status != "accepted":
            for r in items:
                print(f"    - {r.episode_id}: {r.reason}", file=out)
    print(f"  repaired  {sum(r.repaired for r in runs)} (accepted after the LLMRepairer fixed the tree)", file=out)
    print(f"  tokens    {tokens_in} prompt + {tokens_out} completion", file=out)
    print(f"  wall time {wall:.1f}s ({len(runs) / wall * 60:.1f} episodes/min)", file=out)
    print(f"  dataset   {summary.get('accepted', 0)} rows in {datasets_root() / 'proposer' / 'proposer_dataset.parquet'}", file=out)
    return {"runs": [r.model_dump() for r in runs], "dataset": summary, "wall_s": wall}


def import_source(source_format: str, src: Path, out_dir: Path, *, camera: Optional[str] = None,
                  dataset: Optional[str] = None, robot: Optional[str] = None, fps: Optional[float] = None,
                  out=None) -> int:
    """Import a robot dataset into episode folders; 0 when every episode came in, 1 when some failed
    (the others are written all the same), 2 when the source is not usable at all."""
    from teacher_assets.episodes.importers import REPORT_NAME, SourceUnusable, import_dataset

    out = out or sys.stdout

    def progress(e) -> None:
        what = f"-> {e.folder}" if e.status == "imported" else f"FAILED {e.code}: {e.reason}"
        print(f"  episode {e.episode_index if e.episode_index is not None else '?'} ({e.episode_id}): {what}",
              file=out, flush=True)

    print(f"importing {source_format} episodes from {src} into {out_dir}", file=out)
    try:
        report = import_dataset(source_format, src, out_dir, camera=camera, dataset=dataset, robot=robot, fps=fps,
                                progress=progress)
    except SourceUnusable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(report.imported)} imported, {len(report.failed)} failed; report in {out_dir / REPORT_NAME}", file=out)
    if report.imported:
        print(f"next: python -m teacher_assets.manager run --episodes {out_dir}", file=out)
    return 1 if report.failed or not report.imported else 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m teacher_assets.manager", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="materialize the teacher for every episode in a folder")
    p_run.add_argument("--episodes", type=Path, default=None, help="episode folder (default: <datasets>/oxe)")
    p_run.add_argument("--workers", type=int, default=2,
                       help="worker processes, each running a Dagster run over a range of episodes")
    add_llm_arguments(p_run, domain_help="offline teacher only: share of wrong answers (exercises critic and repair loops)")
    p_run.add_argument("--lenient", action="store_true", help="a critic REJECT does not skip the episode")
    p_run.add_argument("--calls-in-flight", type=int, default=1,
                       help="hosted model: episodes each LLM step works on at once per run (calls in flight)")
    p_run.add_argument("--max-rpm", type=float, default=None, help="hosted model: requests per minute, at most")
    p_imp = sub.add_parser("import", help="turn RLDS (Open X-Embodiment) or LeRobot episodes into episode folders")
    p_imp.add_argument("--from", dest="source_format", required=True, choices=["rlds", "lerobot"])
    p_imp.add_argument("src", type=Path, help="RLDS: a TFDS folder (or tfrecord file); LeRobot: the dataset root")
    p_imp.add_argument("--out", type=Path, required=True, help="folder for the episode folders")
    p_imp.add_argument("--camera", default=None, help="image feature / video key (default: the first; RLDS prefers 'image')")
    p_imp.add_argument("--dataset", default=None, help="dataset name in metadata and folder names (default: from the source)")
    p_imp.add_argument("--robot", default=None, help="robot name for metadata when the source does not say")
    p_imp.add_argument("--fps", type=float, default=None, help="frame rate for metadata when the source does not say")
    args = parser.parse_args(argv)
    if args.command == "import":
        return import_source(args.source_format, args.src, args.out, camera=args.camera, dataset=args.dataset,
                             robot=args.robot, fps=args.fps)
    episodes = args.episodes or datasets_root() / "oxe"
    if not episodes.is_dir():
        print(f"error: {episodes} is not a folder", file=sys.stderr)
        return 2
    options = RunOptions(episodes_dir=str(episodes.resolve()), llm=llm_options(p_run, args), strict=not args.lenient,
                         calls_in_flight=max(1, args.calls_in_flight), max_rpm=args.max_rpm)
    try:
        result = run(episodes, workers=max(1, args.workers), options=options)
    except DatasetWriteError as exc:  # found before any work: the datasets folder is read-only or full
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.get("disk_error"):
        return 2
    return 0 if result and all(r["status"] != "failed" for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
