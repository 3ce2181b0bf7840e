"""CLI: ``python -m benchgen_assets.manager generate --tier 1 --count 10``.

Creates the scenario ids and their request files, adds them as partitions of the project's
Dagster instance, materializes each partition's asset chain through Dagster (a few worker
processes in parallel, each running one Dagster run over a range of partitions, so runs and lineage
show in the UI), then the manifest and traces tables, and prints progress and a summary (yield, wall time, per-stage time, tokens, cost).
"""

from __future__ import annotations

import argparse
import functools
import math
import multiprocessing
import re
import shutil
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from typing import Optional

from benchgen_assets.authoring.request_text import offline_refusal, parse_request_text
from benchgen_assets.records import GenerationRequest
from resources.atomic import DatasetWriteError, remove_stale_scratch, require_writable
from resources.llm_options import LLMOptions, add_llm_arguments, llm_options
from resources.paths import datasets_root
from resources.run_workers import (PreforkedPool, loaded_for_life, preload_table_libraries, process_instance,
                                   quiet_range_check_notices, report_dead_worker_runs, worker_tags)

SCENARIO_STEPS = ["generation_request", "scenario_plan", "scenario_script", "validated_scenario", "scenario_preview"]
TABLE_ASSETS = ["benchmark_manifest", "generation_traces"]
# The CLI prints its own progress; Dagster's step log stays in the instance (and the UI).
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "scenario"


def make_requests(*, tier: Optional[int], family: Optional[str], prompt: Optional[str], count: int, seed: int,
                  variants: int) -> list[GenerationRequest]:
    """``count`` requests with ids ``<what>-s<seed>-<i>``: the same command names the same
    scenarios (a rerun replaces them); another ``--seed`` makes new ones."""
    what = "-".join(p for p in (f"t{tier}" if tier else "", _slug(family) if family else "",
                                _slug(prompt) if prompt and not family else "") if p) or "any"
    return [GenerationRequest(scenario_id=f"{what}-s{seed}-{i:03d}", tier=tier, family=family, prompt=prompt,
                              seed=seed + i, variants=variants) for i in range(count)]


def _resources(llm: LLMOptions):
    from resources.dagster_resources import LLMResource, shared_resources

    return {**shared_resources(), "llm": LLMResource(**llm.resource_fields())}


def scenario_summary(result, scenario_id: str, seconds: float, range_run: bool) -> dict:
    """One scenario's outcome in a run: per-partition metadata and check evaluations, or why it failed."""
    from benchgen_assets.defs.assets import FAILED_KEY, FAILED_STAGE_KEY

    partition = scenario_id if range_run else None
    out = {"scenario_id": scenario_id, "success": result.success, "run_id": result.run_id, "seconds": round(seconds, 2),
           "tokens": 0, "cost_usd": 0.0, "checks": {}}
    stage_error, stopped = None, False
    for node in SCENARIO_STEPS:
        for mat in result.asset_materializations_for_node(node):
            if range_run and mat.partition != scenario_id:
                continue
            md = {k: v.value for k, v in mat.metadata.items()}
            stopped |= FAILED_KEY in md
            if md.get(FAILED_STAGE_KEY) == node:  # the stage that raised (later ones say they were not run)
                stage_error = stage_error or md[FAILED_KEY]
            out["tokens"] += int(md.get("llm_prompt_tokens", 0)) + int(md.get("llm_completion_tokens", 0))
            out["cost_usd"] += float(md.get("llm_cost_usd", 0.0) or 0.0)
            if node == "scenario_plan" and "family" in md:
                out["family"] = md["family"]
            if node == "scenario_script" and "attempts" in md:
                out["attempts"] = md["attempts"]
            if node == "validated_scenario" and "valid" in md:
                out["valid"], out["total"] = md["valid"], md["total"]
    for ev in result.get_asset_check_evaluations():
        if ev.partition == partition:
            out["checks"][ev.check_name] = ev.passed
            if not ev.passed:
                out.setdefault("check_error", ev.description)
    failed_checks = [k for k, ok in out["checks"].items() if not ok]
    if range_run:
        out["success"] = result.success and not failed_checks and not stopped
    if out["success"]:
        return out
    failures = [e for e in result.all_events if e.is_step_failure and e.step_key and "_check" not in e.step_key]
    if stage_error:
        out["error"] = stage_error
    elif failed_checks:
        out["error"] = f"blocking check(s) failed: {', '.join(failed_checks)} — {out.get('check_error')}"
    elif failures:  # the user code's exception, not Dagster's wrapper around it
        error = failures[0].event_specific_data.error
        out["error"] = f"{failures[0].step_key}: " + (error.cause or error).message.strip().splitlines()[-1]
    else:
        out["error"] = "the run failed (see its log in the UI)"
    return out


def balanced_batches(partition_order: list[str], scenario_ids: list[str], workers: int, cap: int) -> list[list[str]]:
    """Range runs for ``workers``: stretches of neighbouring partitions (``plan_batches``), each cut into
    near-equal parts of at most ``cap`` and about a worker's share, so that no worker is left with a
    run much longer than the others' (10 over 3 workers: 4, 3, 3 rather than 4, 4, 2)."""
    from teacher_assets.manager import plan_batches

    size = max(1, min(cap, math.ceil(len(scenario_ids) / max(1, workers))))
    batches = []
    for stretch in plan_batches(partition_order, scenario_ids, len(scenario_ids)):
        parts = math.ceil(len(stretch) / size)
        base, extra = divmod(len(stretch), parts)
        start = 0
        for i in range(parts):
            end = start + base + (i < extra)
            batches.append(stretch[start:end])
            start = end
    return batches


def materialize_batch(batch: list[str], *, max_attempts: int, llm: LLMOptions, tag: str) -> list[dict]:
    """One Dagster run over ``batch`` (neighbouring partitions: one, or a range run in which every
    scenario stays its own partition with its lineage, metadata and check results), in this process;
    a summary per scenario for the parent."""
    from dagster import materialize

    from benchgen_assets.definitions import materializable
    from teacher_assets.manager import RANGE_END_TAG, RANGE_START_TAG

    t0 = time.monotonic()
    instance = process_instance()
    quiet_range_check_notices()
    tags = {"benchgen/cli": "generate", "benchgen/batch": tag, **worker_tags()}
    if len(batch) > 1:
        tags.update({RANGE_START_TAG: batch[0], RANGE_END_TAG: batch[-1]})
    try:
        result = materialize(
            materializable, instance=instance, partition_key=batch[0] if len(batch) == 1 else None,
            resources=_resources(llm), selection=SCENARIO_STEPS, raise_on_error=False,
            run_config={"ops": {"scenario_script": {"config": {"max_attempts": max_attempts}}}, **QUIET}, tags=tags,
        )
    except Exception as exc:  # noqa: BLE001 — one broken run must not stop the batch
        return [{"scenario_id": s, "success": False, "error": f"{type(exc).__name__}: {exc}",
                 "seconds": round(time.monotonic() - t0, 2)} for s in batch]
    seconds = time.monotonic() - t0
    steps = {stat.step_key: round(stat.end_time - stat.start_time, 3)
             for stat in instance.get_run_step_stats(result.run_id) if stat.start_time and stat.end_time}
    summaries = [scenario_summary(result, s, seconds, len(batch) > 1) for s in batch]
    summaries[0]["steps"] = steps  # a run's steps are timed once, on its first scenario
    return summaries


def materialize_tables(*, batch: str) -> dict:
    from dagster import materialize

    from benchgen_assets.definitions import materializable

    t0 = time.monotonic()
    result = materialize(materializable, instance=process_instance(), resources=_resources(LLMOptions()), selection=TABLE_ASSETS,
                         run_config=QUIET, tags={"benchgen/cli": "generate", "benchgen/batch": batch})
    md = {k: v.value for k, v in result.asset_materializations_for_node("benchmark_manifest")[0].metadata.items()}
    return {"seconds": round(time.monotonic() - t0, 2), "run_id": result.run_id, "manifest": md}


def warm_up(*, dagster: bool = True) -> None:
    """Pay the heavy imports once before forking workers (they inherit them): litellm, the offline
    author, the validator's libraries, and (``dagster``) the definitions; start the build server meanwhile.
    The tables' libraries (pandas, pyarrow) are not here: only the CLI needs them, and it imports
    them while this runs in the workers' parent (``preload_table_libraries``)."""
    from benchgen_assets.sandbox import ensure_server

    server = threading.Thread(target=ensure_server, name="build-server-start", daemon=True)
    server.start()
    from resources.llm.client import warm_up_litellm

    with loaded_for_life():  # the workers' big Dagster heap made the collector's full passes slow
        warm_up_litellm()
        if dagster:
            import benchgen_assets.definitions  # noqa: F401
        import benchgen_assets.physics  # noqa: F401
        import benchgen_assets.pipeline  # noqa: F401
        import benchgen_assets.variant_runner  # noqa: F401
        server.join()


def _print_summary(results: list[dict], tables: Optional[dict], wall: float) -> None:
    ok = [r for r in results if r["success"]]
    valid = sum(r.get("valid", 0) for r in results)
    total = sum(r.get("total", 0) for r in results)
    stage = defaultdict(float)
    for r in results:
        for k, s in r.get("steps", {}).items():
            stage[k] += s
    print("\n== summary ==")
    print(f"scenarios: {len(ok)}/{len(results)} runs succeeded")
    print(f"variants:  {valid}/{total} valid, yield {valid / total:.0%}" if total else "variants:  none built")
    print(f"wall time: {wall:.1f} s")
    print("stage time (summed over runs, s): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(stage.items(), key=lambda kv: -kv[1])))
    print(f"tokens:    {sum(r.get('tokens', 0) for r in results)}; cost: ${sum(r.get('cost_usd', 0.0) for r in results):.4f}")
    if tables:
        m = tables["manifest"]
        print(f"manifest:  {m.get('path')} ({m.get('rows')} rows, {m.get('scenarios')} scenarios)")
    for r in results:
        if not r["success"]:
            print(f"FAILED {r['scenario_id']}: {r.get('error', '')}")


def generate(args: argparse.Namespace) -> int:
    from benchgen_assets.defs.assets import scenarios_per_run
    from benchgen_assets.defs.partitions import SCENARIOS
    from benchgen_assets.pipeline import save_request
    from resources.paths import default_dagster_home, ensure_dagster_home

    parsed = parse_request_text(args.prompt) if args.prompt else None
    count = args.count or (parsed.count if parsed else None) or 1
    tier = args.tier or (parsed.tier if parsed else None)
    unservable = offline_refusal(args.prompt, tier) if args.prompt and not args.family else None
    if unservable:
        print(unservable, file=sys.stderr)
        return 2
    if not (tier or args.family or args.prompt):
        tier = 1
    require_writable(datasets_root())  # a read-only or full datasets disk: one clear error before any work
    remove_stale_scratch(datasets_root())  # half-written files of an earlier run that was killed
    requests = make_requests(tier=tier, family=args.family, prompt=args.prompt, count=count, seed=args.seed,
                             variants=args.variants)
    t0 = time.monotonic()
    home = ensure_dagster_home()
    if not (home / "dagster.yaml").exists():  # a fresh home gets the project's instance settings
        shutil.copyfile(default_dagster_home() / "dagster.yaml", home / "dagster.yaml")
    from resources.instance_settings import use_cli_instance_settings

    use_cli_instance_settings()  # the forked workers inherit it
    with ExitStack() as stack:
        # Workers: their parent starts now and pays the warm-up (imports, build server) while this
        # process saves the requests and opens the instance; the workers fork from its warm state.
        pool = (stack.enter_context(PreforkedPool(warm_up, multiprocessing.get_context("fork")))
                if args.parallel > 1 else None)
        for r in requests:
            save_request(r)
        instance = process_instance()  # opened once here, for the partitions now and the tables at the end
        report_dead_worker_runs(instance)  # an earlier run whose worker was killed
        known = set(instance.get_dynamic_partitions(SCENARIOS))
        instance.add_dynamic_partitions(SCENARIOS, [r.scenario_id for r in requests if r.scenario_id not in known])
        # A few range runs (one per worker, at most $BENCHGEN_SCENARIOS_PER_RUN scenarios each) instead of
        # a run per scenario: a run's fixed cost (run record, a step and an input load per stage) is shared.
        batches = balanced_batches(instance.get_dynamic_partitions(SCENARIOS), [r.scenario_id for r in requests],
                                   args.parallel, scenarios_per_run())
        batch = time.strftime("%Y%m%d-%H%M%S")
        print(f"generating {len(requests)} scenario(s) ({', '.join(r.scenario_id for r in requests[:3])}"
              f"{', …' if len(requests) > 3 else ''}) in DAGSTER_HOME={home}: {len(batches)} run(s), "
              f"{args.parallel} in parallel", flush=True)
        if pool is None:
            warm_up()
        else:
            with loaded_for_life():  # what this process loaded stays: out of the collector's passes and its exit's
                preload_table_libraries()  # for the tables at the end, while the workers' parent still warms up
        print(f"start-up done at {time.monotonic() - t0:.1f} s"
              f"{'' if pool is None else ' (the workers warm up alongside)'}", flush=True)

        kwargs = dict(max_attempts=args.max_attempts, llm=args.llm, tag=batch)
        results: list[dict] = []

        def report(r: dict) -> None:
            results.append(r)
            status = (f"{r.get('valid', 0)}/{r.get('total', 0)} valid" if r["success"]
                      else f"FAILED: {r.get('error', '')}")
            print(f"[{len(results)}/{len(requests)}] {r['scenario_id']} {r.get('family') or ''} "
                  f"attempts={r.get('attempts', '-')} {status} ({r['seconds']:.1f} s)", flush=True)

        if pool is None:
            for b in batches:
                for r in materialize_batch(b, **kwargs):
                    report(r)
        else:
            for b, done, error in pool.map_unordered(min(args.parallel, len(batches)),
                                                     functools.partial(materialize_batch, **kwargs), batches):
                if error:  # a crashed or killed worker loses its run, not the others
                    done = [{"scenario_id": s, "success": False, "error": error, "seconds": 0.0} for s in b]
                for r in done:
                    report(r)
    if any("run_id" not in r for r in results):  # a worker died mid-run: its Dagster run ends FAILED now
        report_dead_worker_runs(instance)
    tables = materialize_tables(batch=batch)
    _print_summary(sorted(results, key=lambda r: r["scenario_id"]), tables, time.monotonic() - t0)
    return 0 if all(r["success"] for r in results) else 1


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchgen_assets.manager", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate benchmark scenarios through Dagster")
    g.add_argument("--tier", type=int, choices=(1, 2, 3))
    g.add_argument("--family", help="a parametric family, e.g. peg_in_hole, lever")
    g.add_argument("--prompt", help='free text, e.g. "10 levers, tier 2" (count and tier are read from it)')
    g.add_argument("--count", type=int, help="scenarios to generate (default: from --prompt, else 1)")
    g.add_argument("--seed", type=int, default=0, help="base seed; scenario i gets seed + i")
    g.add_argument("--variants", type=int, default=3, help="variants (seed × scale vector) per scenario")
    g.add_argument("--parallel", type=int, default=3, help="worker processes, each running Dagster runs over a range of scenarios")
    g.add_argument("--max-attempts", type=int, default=4, help="Coder ⇄ Reviewer ⇄ validator rounds")
    add_llm_arguments(g, domain_help="offline author only: share of wrong answers (broken scripts) to exercise the "
                                     "repair loop")
    args = parser.parse_args(argv)
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    args.llm = llm_options(g, args)
    try:
        return generate(args)
    except DatasetWriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
