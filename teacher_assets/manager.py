"""CLI: run the agentic teacher over a folder of episodes through Dagster; import robot datasets.

    python -m teacher_assets.manager run [--episodes DIR] [--workers N]
    python -m teacher_assets.manager import --from rlds|lerobot SRC --out DIR [--camera NAME]

Discovers the episodes, adds their partitions to the project's Dagster instance, materializes each
episode's chain of assets (with its blocking checks) in a few worker processes — every episode is
one Dagster run, visible with its lineage in the UI — then the proposer dataset, and prints progress
and a summary (accepted / skipped / invalid / rejected / repaired with reasons, tokens, wall time).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

from pydantic import BaseModel

from resources.paths import datasets_root, ensure_dagster_home


class EpisodeRun(BaseModel):
    episode_id: str
    run_id: str
    success: bool
    status: str  # the episode's status, or "failed" when the run failed (a failed or blocking check)
    reason: str = ""
    repaired: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class RunOptions(BaseModel):
    episodes_dir: str
    fault_domain: float = 0.0
    fault_seed: int = 0
    strict: bool = True


def _materialize_episode(episode_id: str, options: RunOptions) -> EpisodeRun:
    """One Dagster run: every episode asset and check for one partition, in the project instance."""
    from dagster import DagsterInstance, materialize

    from resources.dagster_resources import LLMResource
    from teacher_assets.defs.assets import EPISODE_ASSETS
    from teacher_assets.defs.checks import TEACHER_CHECKS

    started = time.monotonic()
    with DagsterInstance.get() as instance:
        result = materialize(
            [*EPISODE_ASSETS, *TEACHER_CHECKS], partition_key=episode_id, instance=instance,
            resources={"llm": LLMResource(fault_domain=options.fault_domain, fault_seed=options.fault_seed)},
            run_config={"ops": {"oxe_episode": {"config": {"episodes_dir": options.episodes_dir}},
                                "bt_draft": {"config": {"strict": options.strict}}},
                         "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags={"teacher/episode": episode_id, "teacher/launched_by": "teacher_assets.manager"},
            raise_on_error=False,
        )
    run = EpisodeRun(episode_id=episode_id, run_id=result.run_id, success=result.success, status="failed",
                     seconds=round(time.monotonic() - started, 2))
    if result.success:
        state = result.output_for_node("bt_score")
        run.status, run.reason, run.repaired = state.status, state.reason or "", state.repaired
        run.prompt_tokens = sum(c.prompt_tokens for c in state.audit)
        run.completion_tokens = sum(c.completion_tokens for c in state.audit)
    else:
        failed = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
        steps = [e.step_key for e in result.all_events if e.is_step_failure]
        run.reason = f"failed checks: {', '.join(failed)}" if failed else f"failed steps: {', '.join(steps)}"
    return run


def _materialize_dataset() -> dict:
    from dagster import DagsterInstance, materialize

    from teacher_assets.defs.assets import proposer_dataset

    with DagsterInstance.get() as instance:
        result = materialize([proposer_dataset], instance=instance, tags={"teacher/launched_by": "teacher_assets.manager"},
                             run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    return result.output_for_node("proposer_dataset")


def run(episodes_dir: Path, *, workers: int = 2, options: Optional[RunOptions] = None, out=sys.stdout) -> dict:
    from dagster import DagsterInstance

    from teacher_assets.defs.assets import episodes_partitions
    from teacher_assets.episodes import discover_episodes

    ensure_dagster_home()
    episodes_dir = episodes_dir.resolve()
    options = options or RunOptions(episodes_dir=str(episodes_dir))
    found = discover_episodes(episodes_dir)
    ids = [e.id for e in found if e.id]
    for e in found:
        if not e.id:
            print(f"ignored: {e.path}: {getattr(e, 'reason', 'no episode id')}", file=out)
    if not ids:
        print(f"no episodes in {episodes_dir}", file=out)
        return {}
    with DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions(episodes_partitions.name))
        instance.add_dynamic_partitions(episodes_partitions.name, [i for i in ids if i not in known])
    print(f"{len(ids)} episodes from {episodes_dir}; {workers} worker(s); DAGSTER_HOME={ensure_dagster_home()}", file=out)

    started = time.monotonic()
    runs: list[EpisodeRun] = []
    # Spawned workers: a clean interpreter each (no forked Dagster/SQLite state).
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_materialize_episode, i, options): i for i in ids}
        for n, fut in enumerate(as_completed(futures), 1):
            try:
                r = fut.result()
            except Exception as exc:  # noqa: BLE001 — a crashed worker loses one episode, not the run
                r = EpisodeRun(episode_id=futures[fut], run_id="", success=False, status="failed",
                               reason=f"{type(exc).__name__}: {exc}")
            runs.append(r)
            flag = " (repaired)" if r.repaired else ""
            why = f" — {r.reason}" if r.status != "accepted" else ""
            print(f"[{n}/{len(ids)}] {r.episode_id}: {r.status}{flag} in {r.seconds:.1f}s{why}", file=out, flush=True)
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
    p_run.add_argument("--workers", type=int, default=2, help="worker processes, one Dagster run at a time each")
    p_run.add_argument("--fault-domain", type=float, default=0.0,
                       help="offline teacher only: share of wrong answers (exercises critic and repair loops)")
    p_run.add_argument("--fault-seed", type=int, default=0)
    p_run.add_argument("--lenient", action="store_true", help="a critic REJECT does not skip the episode")
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
    options = RunOptions(episodes_dir=str(episodes.resolve()), fault_domain=args.fault_domain,
                         fault_seed=args.fault_seed, strict=not args.lenient)
    result = run(episodes, workers=max(1, args.workers), options=options)
    return 0 if result and all(r["status"] != "failed" for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
