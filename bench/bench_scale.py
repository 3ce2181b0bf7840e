"""Teacher throughput at scale: through Dagster vs the same domain calls direct, side by side.

    .venv/bin/python bench/bench_scale.py [--copies 6] [--workers 2] [--repeat 2] [--write]
    .venv/bin/python bench/bench_scale.py --hosted [--pools 1,4,16] [--latency 1-3] [--max-rpm 600] [--hosted-episodes 12]
    .venv/bin/python bench/bench_scale.py --partitions 1000 [--backfill] [--write]
    .venv/bin/python bench/bench_scale.py --faults 0.3 [--fault-episodes 200] [--fault-scenarios 50] [--write]

Default: ``--copies`` copies of every shipped sample episode (6 × 14 = 84), each path on a fresh
Dagster home and datasets root (cold LLM cache; copies of one sample share its cache entries):

1. through Dagster: ``python -m teacher_assets.manager run`` — partition-range runs, one per forked
   worker process, then ``proposer_dataset``;
2. direct: a fresh Python process that starts the same way (imports and litellm once, then
   ``--workers`` forked processes) and runs the same stages, checks and writes per episode with no
   Dagster, then writes the proposer dataset.

Each path is a process of its own, so both pay their imports and start-up.

The paths alternate (Dagster, direct, Dagster, …) so load drifts hit both; the ratio is taken per
repeat, on wall time and on CPU time (parent + workers: less sensitive to other load).

``--hosted``: a local OpenAI-compatible server (``tests/llm_server.py``) answers every call with
the offline author's reply after a random 1–3 s; the teacher (one range run) keeps each ``--pools``
number of calls in flight (``--calls-in-flight``, and the ``llm`` pool limit set to it) under a
requests-per-minute cap, on ``--hosted-episodes`` distinct episodes.

``--partitions N``: N episode folders (copies of the samples, each with its instruction reworded, so
no two share LLM calls) added as dynamic partitions of a fresh SQLite instance; the latency of the
UI's asset partition status query for ``bt_score`` on a real ``dagster-webserver`` and the
webserver's memory; with ``--backfill``, all N through ``teacher_assets.manager.run`` (range runs),
then the query again.

``--faults RATE``: the teacher CLI over ``--fault-episodes`` reworded episodes and the scenario CLI over
``--fault-scenarios`` scenarios, each with ``--faults RATE`` (malformed replies, timeouts, 429s from the
offline author; the client's default retries, a short backoff), on fresh instances: every partition's
outcome (accepted / skipped or rejected with a reason / failed, by cause) from the Dagster instance,
the injected faults counted in the LLM traces, leftover ``.tmp`` files, wall time and load.

``--write`` replaces the "Scale" sections of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.results import write_section  # noqa: E402

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
SAMPLES = ROOT / "datasets" / "oxe"
HEADING, HOSTED_HEADING = "## Scale: teacher through Dagster vs direct", "## Scale: teacher on a hosted model"
PARTITIONS_HEADING = "## Scale: 1,000 episode partitions"


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def copy_samples(dest: Path, copies: int) -> Path:
    for i in range(copies):
        for sample in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
            shutil.copytree(sample, dest / f"{sample.name}_c{i}")
    return dest


class fresh_instance:
    """A temp DAGSTER_HOME (the project's dagster.yaml, optionally another ``llm`` pool limit) and
    datasets root, as env vars, for one measurement."""

    def __init__(self, llm_pool_limit: int | None = None):
        self.llm_pool_limit = llm_pool_limit

    def __enter__(self) -> Path:
        import yaml

        self.tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
        self.saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "BENCHGEN_DATASETS")}
        home = self.tmp / "dagster_home"
        home.mkdir()
        config = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())
        if self.llm_pool_limit:
            config["concurrency"]["pools"]["default_limit"] = self.llm_pool_limit
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        os.environ["DAGSTER_HOME"], os.environ["BENCHGEN_DATASETS"] = str(home), str(self.tmp / "datasets")
        return self.tmp

    def __exit__(self, *exc) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.tmp, ignore_errors=True)


def _timed(cmd: list[str]) -> tuple[str, float, float]:
    """Run one path as a fresh Python process (imports and worker start included): stdout, wall, CPU."""
    import subprocess

    started, cpu = time.monotonic(), cpu_seconds()
    done = subprocess.run(cmd, cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True)
    wall, cpu = time.monotonic() - started, cpu_seconds() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done.stdout, wall, cpu


def through_dagster(episodes: Path, workers: int) -> dict:
    """The teacher CLI, end to end: range runs in forked workers, then ``proposer_dataset``."""
    with fresh_instance():
        stdout, wall, cpu = _timed([sys.executable, "-m", "teacher_assets.manager", "run", "--episodes", str(episodes),
                                    "--workers", str(workers)])
    counts = {m[0]: int(m[1]) for m in (line.split() for line in stdout.splitlines())
              if len(m) == 2 and m[0] in ("accepted", "skipped", "invalid", "rejected", "failed")}
    return {"wall_s": wall, "cpu_s": cpu, "episodes": sum(counts.values()), "accepted": counts.get("accepted", 0),
            "failed": counts.get("failed", 0)}


def _direct_batch(episodes_dir: str, ids: list[str]) -> list[str]:
    """What the episode assets and checks do for these episodes, as plain calls (a forked worker)."""
    from resources.llm import LLMClient, LLMSettings
    from resources.paths import datasets_root
    from teacher_assets import pipeline as p
    from teacher_assets.tree_checks import btcpp_load_check, episode_world, executability_check, pal_check, schema_check

    client = LLMClient(LLMSettings())
    statuses = []
    for eid in ids:
        state = p.load_stage(Path(episodes_dir), eid)
        for stage in (p.feasibility_stage, p.scene_stage, p.design_stage, p.refine_stage, p.conformance_stage):
            state = stage(client, state)
        if state.bt_xml:
            objects, report = state.metadata.get("objects"), state.scene_report
            world = episode_world(state.instruction, objects if isinstance(objects, list) else [],
                                  scene_entities=report.entities, object_states=report.object_states)
            verdicts = [schema_check(state.bt_xml), btcpp_load_check(state.bt_xml), pal_check(state.bt_xml),
                        executability_check(state.bt_xml, world)]
            if not all(v.passed for v in verdicts):
                statuses.append("failed")
                continue
        state = p.score_stage(client, state)
        p.write_outputs(state, datasets_root() / "proposer")
        statuses.append(state.status)
    return statuses


def direct_path(episodes: Path, workers: int) -> None:
    """The direct path's own process: the same start as the CLI (imports and litellm once, then fork
    ``workers`` processes), the same stages, checks and writes per episode, then the proposer dataset."""
    import json

    import teacher_assets.pipeline  # noqa: F401
    import teacher_assets.tree_checks  # noqa: F401
    from resources.llm.client import warm_up_litellm
    from resources.paths import datasets_root
    from teacher_assets.manager import episode_ids
    from teacher_assets.pipeline import write_proposer_dataset

    warm_up_litellm()
    ids = episode_ids(episodes, io.StringIO())
    size = math.ceil(len(ids) / workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        batches = pool.map(_direct_batch, [str(episodes)] * workers, [ids[i:i + size] for i in range(0, len(ids), size)])
        statuses = [s for batch in batches for s in batch]
    write_proposer_dataset(datasets_root() / "proposer")
    print(json.dumps(statuses))


def direct(episodes: Path, workers: int) -> dict:
    import json

    with fresh_instance():
        stdout, wall, cpu = _timed([sys.executable, str(Path(__file__).resolve()), "--direct-path", str(episodes),
                                    "--workers", str(workers)])
    statuses = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "cpu_s": cpu, "episodes": len(statuses), "accepted": statuses.count("accepted"),
            "failed": statuses.count("failed")}


def throughput(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-scale-episodes-") as tmp:
        episodes = copy_samples(Path(tmp), args.copies)
        rows = []
        for i in range(args.repeat):
            before = load()
            d = through_dagster(episodes, args.workers)
            mid = load()
            x = direct(episodes, args.workers)
            rows.append({"dagster": d, "direct": x, "load": f"{before} / {mid} / {load()}"})
            print(f"repeat {i + 1}: Dagster {d['wall_s']:.1f} s wall, {d['cpu_s']:.1f} s CPU "
                  f"({d['episodes'] / d['wall_s'] * 60:.0f} episodes/min); direct {x['wall_s']:.1f} s, {x['cpu_s']:.1f} s CPU; "
                  f"ratio wall {d['wall_s'] / x['wall_s']:.2f}, CPU {d['cpu_s'] / x['cpu_s']:.2f}; load {rows[-1]['load']}",
                  flush=True)
    return {"rows": rows}


def hosted(args) -> dict:
    """Episodes/min against a slow OpenAI-compatible server, for each number of calls in flight."""
    from teacher_assets.manager import RunOptions, run
    from tests.llm_server import offline_answer, serving

    low, high = (float(x) for x in args.latency.split("-"))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-hosted-") as tmp:
        samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir())[:args.hosted_episodes]
        for sample in samples:  # distinct episodes: copies would answer each other from the LLM cache
            shutil.copytree(sample, Path(tmp) / sample.name)
        with serving(offline_answer, latency=(low, high)) as (base, server):
            os.environ.update({"BENCHGEN_LLM_MODEL": "openai/bench-model", "BENCHGEN_LLM_API_BASE": base,
                               "OPENAI_API_KEY": "sk-bench-local"})
            try:
                for pool in args.pools:
                    server.seen.clear()
                    server.most_in_flight = 0
                    with fresh_instance(llm_pool_limit=pool):
                        before, started = load(), time.monotonic()
                        printed = io.StringIO()
                        result = run(Path(tmp), workers=1, out=printed, options=RunOptions(
                            episodes_dir=tmp, calls_in_flight=pool, max_rpm=args.max_rpm))
                        wall = time.monotonic() - started
                    statuses = [r["status"] for r in result["runs"]]
                    if not server.seen:
                        raise RuntimeError(f"no call reached the server:\n{printed.getvalue()}")
                    minutes = (max(r["t"] for r in server.seen) - min(r["t"] for r in server.seen)) / 60
                    rows.append({"pool": pool, "episodes": len(statuses), "wall_s": wall, "calls": len(server.seen),
                                 "most_in_flight": server.most_in_flight, "rpm": len(server.seen) / max(minutes, 1e-9),
                                 "accepted": statuses.count("accepted"), "failed": statuses.count("failed"),
                                 "load": f"{before} / {load()}"})
                    r = rows[-1]
                    print(f"pool {pool}: {r['episodes'] / wall * 60:.1f} episodes/min, {r['calls']} calls, "
                          f"{r['most_in_flight']} in flight at most, {r['rpm']:.0f} requests/min, load {r['load']}",
                          flush=True)
            finally:
                for k in ("BENCHGEN_LLM_MODEL", "BENCHGEN_LLM_API_BASE", "OPENAI_API_KEY"):
                    os.environ.pop(k, None)
    return {"rows": rows}


def render_hosted(args, result: dict) -> str:
    lines = [
        HOSTED_HEADING,
        "",
        f"Command: `.venv/bin/python bench/bench_scale.py --hosted --pools {','.join(map(str, args.pools))} "
        f"--latency {args.latency} --max-rpm {args.max_rpm:g} --hosted-episodes {args.hosted_episodes} --write`",
        "",
        f"A local OpenAI-compatible server (`tests/llm_server.py`) answers each call with the offline author's "
        f"reply after {args.latency} s; {args.hosted_episodes} distinct sample episodes, one range run "
        "(`teacher_assets.manager run --workers 1 --calls-in-flight N`), `llm` pool limit N, a fresh LLM cache "
        "per row (distinct episodes: no hits), "
        f"RPM cap {args.max_rpm:g}.",
        "",
        "| calls in flight (pool) | episodes | wall | episodes/min | calls | most in flight at the server | requests/min | accepted | failed | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['pool']} | {r['episodes']} | {r['wall_s']:.1f} s | {r['episodes'] / r['wall_s'] * 60:.1f} | "
                     f"{r['calls']} | {r['most_in_flight']} | {r['rpm']:.0f} | {r['accepted']} | {r['failed']} | {r['load']} |")
    return "\n".join(lines) + "\n"


# Endings the offline author's instruction parser reads past (a leading word like "Please" makes it
# skip the episode as infeasible): every episode still gets its own prompts.
ADVERBS = ["", " please", " carefully", " now", " slowly", " quickly"]
STATUS_QUERY = """query PartitionStatus($key: AssetKeyInput!) {
  assetNodes(assetKeys: [$key]) {
    partitionKeysByDimension { name partitionKeys }
    assetPartitionStatuses { ... on DefaultPartitionStatuses {
      materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions } }
  }
}"""


def reworded_episodes(dest: Path, count: int) -> Path:
    """``count`` episode folders: the samples in turn, each with its own wording of the instruction."""
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_dir())
    for i in range(count):
        sample, variant = samples[i % len(samples)], i // len(samples)
        folder = shutil.copytree(sample, dest / f"{sample.name}_v{i:04d}")
        text = (folder / "instruction.txt").read_text().strip().rstrip(".") + ADVERBS[variant % len(ADVERBS)]
        take = variant // len(ADVERBS)
        (folder / "instruction.txt").write_text(text + (f" (take {take + 1})" if take else "") + ".\n")
    return dest


def serving_tree_mib(port: int) -> float:
    """Resident memory of the webserver listening on ``port`` and its code servers (its children)."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(c.endswith("dagster-webserver") for c in cmd[:2]) and str(port) in cmd:
            tree = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in tree) / 2**20
    raise RuntimeError(f"no dagster-webserver on port {port}")


def status_query_seconds(url: str, repeat: int = 5) -> tuple[list[float], dict]:
    from tests.webserver import graphql

    times, data = [], {}
    for _ in range(repeat):
        started = time.monotonic()
        data = graphql(url, STATUS_QUERY, {"key": {"path": ["bt_score"]}})
        times.append(time.monotonic() - started)
    statuses = data["assetNodes"][0]["assetPartitionStatuses"]
    counts = {k: len(v) for k, v in statuses.items()}
    counts["partitions"] = len(data["assetNodes"][0]["partitionKeysByDimension"][0]["partitionKeys"])
    return times, counts


def many_partitions(args) -> dict:
    from dagster import DagsterInstance

    from resources.paths import datasets_root
    from teacher_assets.defs.assets import episodes_partitions
    from teacher_assets.manager import RunOptions, episode_ids, run
    from tests.webserver import running_webserver

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-partitions-") as tmp, fresh_instance() as inst:
        episodes = reworded_episodes(Path(tmp), args.partitions)
        with DagsterInstance.get() as instance:
            started = time.monotonic()
            instance.add_dynamic_partitions(episodes_partitions.name, episode_ids(episodes, io.StringIO()))
            added_s = time.monotonic() - started
        env = {"BENCHGEN_EPISODES_DIR": str(episodes)}
        with running_webserver(inst / "dagster_home", inst / "webserver.log", env) as url:
            port = int(url.rsplit(":", 1)[1])

            def measure(when: str) -> None:
                before = load()
                times, counts = status_query_seconds(url)
                rows.append({"when": when, "first_s": times[0], "median_s": statistics.median(times[1:]),
                             "max_s": max(times), "counts": counts, "rss_mib": serving_tree_mib(port),
                             "load": f"{before} / {load()}"})
                print(f"{when}: {rows[-1]}", flush=True)

            measure("partitions added, none materialized")
            backfill = None
            if args.backfill:
                before, started = load(), time.monotonic()
                result = run(episodes, workers=args.workers, out=io.StringIO(),
                             options=RunOptions(episodes_dir=str(episodes)))
                wall = time.monotonic() - started
                children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                statuses = [r["status"] for r in result["runs"]]
                backfill = {"wall_s": wall, "episodes": len(statuses), "runs": len({r["run_id"] for r in result["runs"]}),
                            "by_status": {s: statuses.count(s) for s in sorted(set(statuses))},
                            "worker_max_rss_mib": children, "load": f"{before} / {load()}",
                            "datasets_mib": sum(f.stat().st_size for f in datasets_root().rglob("*") if f.is_file()) / 2**20}
                print(f"backfill: {backfill}", flush=True)
                measure("after the backfill")
    return {"rows": rows, "added_s": added_s, "backfill": backfill}


PARTITIONS_NOTE = (
    '"materialized" counts every partition whose `bt_score` materialized, skipped episodes included '
    "(their status is in the metadata). The backfill is the CLI's range runs, each launched in its worker"
    ' process (the run queue and the daemon are not involved); a UI/daemon backfill '
    '(`BackfillPolicy.multi_run`, 50 episodes a run) was not measured. 100,000 episodes were not tried: '
    'linearly, about 100× this wall time on 2 cores with the offline teacher; the status query returns '
    'every partition key, so its reply grows with the partition count.')


def render_partitions(args, result: dict) -> str:
    lines = [
        PARTITIONS_HEADING,
        "",
        f"Command: `.venv/bin/python bench/bench_scale.py --partitions {args.partitions}"
        f"{' --backfill --workers ' + str(args.workers) if args.backfill else ''} --write`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2 cores shared with other sessions. {args.partitions} episode "
        "folders (the 14 samples in turn, each instruction with its own ending, e.g. \" slowly (take 3)\": no two "
        "episodes share an LLM call) added as "
        f"dynamic partitions of a fresh SQLite instance in {result['added_s']:.1f} s. The UI's partition status "
        "query for `bt_score` (`assetNodes { partitionKeysByDimension assetPartitionStatuses }`) against a real "
        "`dagster-webserver` (both code locations), 5 times: the first, then the median and the max of all; "
        "memory: resident set of the webserver and its code servers.",
        "",
        "| when | partitions | materialized / failed | first query | median | max | webserver + code servers RSS | load before / after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        c = r["counts"]
        lines.append(f"| {r['when']} | {c['partitions']} | {c['materializedPartitions']} / {c['failedPartitions']} | "
                     f"{r['first_s']:.2f} s | {r['median_s']:.2f} s | {r['max_s']:.2f} s | {r['rss_mib']:.0f} MiB | {r['load']} |")
    b = result["backfill"]
    if b:
        lines += ["", f"Backfill: all {b['episodes']} episodes through `teacher_assets.manager.run --workers {args.workers}` "
                  f"({b['runs']} range runs of at most `$BENCHGEN_EPISODES_PER_RUN` episodes, offline teacher, cold cache): "
                  f"{b['wall_s']:.0f} s wall ({b['episodes'] / b['wall_s'] * 60:.0f} episodes/min), outcomes "
                  f"{b['by_status']}, largest worker {b['worker_max_rss_mib']:.0f} MiB RSS, datasets {b['datasets_mib']:.0f} MiB, "
                  f"load {b['load']}."]
    else:
        lines += ["", "Backfill not run here (`--backfill`)."]
    lines += ["", PARTITIONS_NOTE]
    return "\n".join(lines) + "\n"


def faults_heading(rate: float) -> str:
    return f"## Scale: {rate * 100:g} % injected faults"


def fault_cause(error: str) -> str:
    """What made an agent call fail for good, in a word (the full error is in the instance and the CLI)."""
    for marker, cause in (("injected timeout", "timeout"), ("injected rate limit", "rate limit (429)"),
                          ("gave no valid", "unparseable replies")):
        if marker in error:
            return cause
    return error[:120]


def trace_counts(datasets: Path) -> dict:
    """LLM requests sent (attempts: each ends ok, provider_error or error), cache hits, and the faults injected."""
    from tests.outcomes import injected_faults

    outcomes = Counter(json.loads(line)["outcome"] for path in (datasets / "traces" / "llm").rglob("*.jsonl")
                       for line in path.read_text().splitlines())
    return {"attempts": outcomes["ok"] + outcomes["provider_error"] + outcomes["error"],
            "cache_hits": outcomes["cache_hit"], "injected": dict(injected_faults(datasets))}


def teacher_with_faults(args) -> dict:
    from resources.llm_options import LLMOptions
    from resources.paths import datasets_root
    from teacher_assets.manager import RunOptions, run
    from tests.outcomes import latest_metadata

    with tempfile.TemporaryDirectory(prefix="bench-faults-episodes-") as tmp, fresh_instance() as inst:
        episodes = reworded_episodes(Path(tmp), args.fault_episodes)
        before, started = load(), time.monotonic()
        result = run(episodes, workers=args.workers, out=io.StringIO(), options=RunOptions(
            episodes_dir=str(episodes), llm=LLMOptions(faults=args.faults, backoff_s=args.fault_backoff_s)))
        wall = time.monotonic() - started
        score = latest_metadata(inst / "dagster_home", "bt_score")
        outcomes = Counter(r["status"] for r in result["runs"])
        causes = Counter(fault_cause(r["reason"]) for r in result["runs"] if r["status"] == "failed")
        return {"partitions": len(result["runs"]), "outcomes": dict(outcomes), "failed_by_cause": dict(causes),
                "in_instance": sum(1 for r in result["runs"] if score.get(r["episode_id"], {}).get("episode_status") == r["status"]),
                "tmp_files": len([p for p in datasets_root().rglob("*") if p.name.endswith(".tmp")]),
                **trace_counts(datasets_root()), "wall_s": wall, "load": f"{before} / {load()}"}


def scenarios_with_faults(args) -> dict:
    """The scenario CLI as a user runs it (a subprocess), then each partition's outcome from the instance."""
    import subprocess

    from benchgen_assets.defs.assets import FAILED_KEY, FAILED_STAGE_KEY
    from benchgen_assets.manager import SCENARIO_STEPS
    from benchgen_assets.sandbox import shutdown_server
    from resources.paths import datasets_root
    from tests.outcomes import latest_metadata

    with fresh_instance() as inst:
        os.environ["BENCHGEN_SANDBOX_DIR"] = str(inst / "sandbox")  # a build server of its own, stopped below
        cmd = [sys.executable, "-m", "benchgen_assets.manager", "generate", "--tier", str(args.fault_tier),
               "--count", str(args.fault_scenarios), "--faults", str(args.faults),
               "--llm-backoff-s", str(args.fault_backoff_s)]
        before, started = load(), time.monotonic()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.monotonic() - started
        try:
            if done.returncode not in (0, 1):
                raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
            home = inst / "dagster_home"
            stages = {step: latest_metadata(home, step) for step in SCENARIO_STEPS}
            outcomes, causes = Counter(), Counter()
            for sid, preview in stages["scenario_preview"].items():
                if preview.get("rendered"):
                    outcomes["accepted"] += 1
                    continue
                raised = [md[FAILED_KEY] for step, by_sid in stages.items() if (md := by_sid.get(sid, {}))
                          and md.get(FAILED_STAGE_KEY) == step]
                if raised:
                    outcomes["failed"] += 1
                    causes[fault_cause(raised[0])] += 1
                else:  # no valid variant: the blocking checks said no
                    outcomes["rejected"] += 1
            return {"partitions": args.fault_scenarios, "outcomes": dict(outcomes), "failed_by_cause": dict(causes),
                    "in_instance": len(stages["scenario_preview"]),
                    "tmp_files": len([p for p in datasets_root().rglob("*") if p.name.endswith(".tmp")]),
                    **trace_counts(datasets_root()), "wall_s": wall, "load": f"{before} / {load()}",
                    "cli_summary": next((line for line in done.stdout.splitlines() if line.startswith("scenarios:")), "")}
        finally:
            shutdown_server()
            os.environ.pop("BENCHGEN_SANDBOX_DIR")


def with_faults(args) -> dict:
    rows = {}
    for name, measure in (("teacher", teacher_with_faults), ("scenarios", scenarios_with_faults)):
        rows[name] = measure(args)
        print(f"{name}: {rows[name]}", flush=True)
    return rows


def render_faults(args, rows: dict) -> str:
    lines = [
        faults_heading(args.faults),
        "",
        f"Command: `.venv/bin/python bench/bench_scale.py --faults {args.faults:g} --fault-episodes {args.fault_episodes} "
        f"--fault-scenarios {args.fault_scenarios} --fault-tier {args.fault_tier} --workers {args.workers} --write`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, 2 cores shared with other sessions. Both CLIs with "
        f"`--faults {args.faults:g} --llm-backoff-s {args.fault_backoff_s:g}`: {args.faults:.0%} of the LLM requests get "
        "a malformed reply, a timeout or a 429 from the offline author; the client's default retries (4 on provider "
        "errors, 3 replies on unparseable ones). Teacher: `teacher_assets.manager run --workers "
        f"{args.workers}` over {args.fault_episodes} reworded sample episodes; scenarios: `benchgen_assets.manager "
        f"generate --tier {args.fault_tier} --count {args.fault_scenarios}` (3 variants each). Fresh Dagster home, datasets "
        "root and LLM cache each. Outcomes are read back from the Dagster instance (latest materialization per "
        "partition); \"in the instance\" counts the partitions whose outcome is recorded there; injected faults "
        "are counted in the LLM traces (a cache hit is no request: copies of one sample, and scenarios of one "
        "family, share prompts).",
        "",
        "| factory | partitions | in the instance | accepted | skipped / rejected (with reason) | failed (cause) | "
        "LLM requests (+ cache hits) | injected timeout / 429 / malformed | `.tmp` left | wall | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        o, inj = r["outcomes"], r["injected"]
        other = ", ".join(f"{k} {v}" for k, v in sorted(o.items()) if k not in ("accepted", "failed")) or "0"
        failed = f"{o.get('failed', 0)}" + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(r['failed_by_cause'].items()))})"
                                           if r["failed_by_cause"] else "")
        injected = sum(inj.values())
        lines.append(f"| {name} | {r['partitions']} | {r['in_instance']} | {o.get('accepted', 0)} | {other} | {failed} | "
                     f"{r['attempts']} (+{r['cache_hits']}) | {inj.get('timeout', 0)} / {inj.get('rate_limit', 0)} / {inj.get('malformed', 0)} "
                     f"({injected / max(1, r['attempts']):.0%} of requests) | {r['tmp_files']} | {r['wall_s']:.0f} s | {r['load']} |")
    lines += ["", "A failed partition's error names the stage, the agent, the partition and the cause (e.g. "
              "`scene_report raised LLMCallError: agent 'teacher.scene_analysis' (asset scene_report, partition …) "
              "failed, gave up after 5 attempts: Timeout: … injected timeout`); `tests/test_faults.py` checks every "
              "partition against this on a smaller batch with fewer retries."]
    return "\n".join(lines) + "\n"


def render(args, result: dict) -> str:
    rows = result["rows"]
    n = rows[0]["dagster"]["episodes"]
    lines = [
        HEADING,
        "",
        f"Command: `.venv/bin/python bench/bench_scale.py --copies {args.copies} --workers {args.workers} "
        f"--repeat {args.repeat} --write`",
        "",
        f"Machine: 2 cores, 24 GiB, no GPU ({platform.python_version()}), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"{n} episodes ({args.copies} copies of each shipped sample), offline teacher, cold caches, fresh "
        f"Dagster home per measurement, each path a fresh process with {args.workers} forked workers (imports and start-up included). "
        "Load average (1 min) before Dagster / before direct / after, per repeat.",
        "",
        "| repeat | load | Dagster wall | Dagster episodes/min | direct wall | direct episodes/min | wall ratio | CPU ratio | accepted (D / direct) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        d, x = r["dagster"], r["direct"]
        lines.append(f"| {i} | {r['load']} | {d['wall_s']:.1f} s | {n / d['wall_s'] * 60:.0f} | {x['wall_s']:.1f} s | "
                     f"{n / x['wall_s'] * 60:.0f} | {d['wall_s'] / x['wall_s']:.2f}× | {d['cpu_s'] / x['cpu_s']:.2f}× | "
                     f"{d['accepted']} / {x['accepted']} |")
    ratios = [r["dagster"]["wall_s"] / r["direct"]["wall_s"] for r in rows]
    lines += ["", f"Dagster / direct wall time, median over repeats: **{statistics.median(ratios):.2f}×**.", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--hosted", action="store_true", help="episodes/min against a slow local OpenAI-compatible server")
    ap.add_argument("--pools", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4, 16])
    ap.add_argument("--latency", default="1-3", help="seconds per call, min-max")
    ap.add_argument("--max-rpm", type=float, default=600)
    ap.add_argument("--hosted-episodes", type=int, default=12)
    ap.add_argument("--partitions", type=int, default=0, help="episode partitions for the partition-status measurement")
    ap.add_argument("--backfill", action="store_true", help="with --partitions: materialize them all (range runs)")
    ap.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                    help="both CLIs with this share of injected LLM faults (malformed, timeout, 429)")
    ap.add_argument("--fault-episodes", type=int, default=200)
    ap.add_argument("--fault-scenarios", type=int, default=50)
    ap.add_argument("--fault-tier", type=int, default=2)
    ap.add_argument("--fault-backoff-s", type=float, default=0.05, help="first retry wait under --faults")
    ap.add_argument("--direct-path", type=Path, default=None, help=argparse.SUPPRESS)  # the direct path's process
    args = ap.parse_args()
    if args.direct_path:
        direct_path(args.direct_path, args.workers)
        return 0
    # Here, not at import: spawned workers import this module again, and --hosted sets the model for them.
    os.environ.pop("BENCHGEN_LLM_MODEL", None)
    if args.faults:
        text = render_faults(args, with_faults(args))
        print(text)
        if args.write:
            write_section(faults_heading(args.faults), text)
        return 0
    if args.partitions:
        text = render_partitions(args, many_partitions(args))
        print(text)
        if args.write:
            write_section(PARTITIONS_HEADING, text)
        return 0
    if args.hosted:
        text = render_hosted(args, hosted(args))
        print(text)
        if args.write:
            write_section(HOSTED_HEADING, text)
        return 0
    text = render(args, throughput(args))
    print(text)
    if args.write:
        write_section(HEADING, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
