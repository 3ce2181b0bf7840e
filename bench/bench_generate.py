"""Scenario generator benchmark: ``generate --tier 1 --count 10`` on the offline author.

    .venv/bin/python bench/bench_generate.py [--count 10] [--variants 3] [--parallel 3] [--repeat 3]
                                             [--pycache DIR] [--write]

1. Through Dagster: the CLI as a user runs it, in a fresh temp DAGSTER_HOME (its databases made
   beforehand, as a user's instance exists) and datasets root (wall time, CPU time of the CLI and its workers, per-stage time summed over the runs, yield).
2. Direct: the same requests through the same domain functions, no Dagster, the same number of
   forked workers, another fresh datasets root (so the LLM cache is cold in both).
Each repeat runs both, one after the other; the ratio of their wall times is the orchestration
overhead. The machine is shared, so the load average is recorded around every run and the median
and the best run are both reported. The shared build server is started before either run, so
neither pays build123d's import (its build jobs are not in the CPU time either).
``--pycache DIR`` lets the runs write and use compiled bytecode there (PYTHONPYCACHEPREFIX): where
PYTHONDONTWRITEBYTECODE=1 is set and the venv has no .pyc files (scripts/setup.sh compiles them), every process
compiles every module it imports from source. ``--write`` puts the figures into the "Scenario
generator" section of bench/RESULTS.md (other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = "## Scenario generator"


def _direct_scenario(request_json: str) -> dict:
    """One scenario through the plain pipeline functions, timed per stage like the assets."""
    from benchgen_assets.pipeline import make_plan, make_script, save_request, variants_for
    from benchgen_assets.records import GenerationRequest
    from benchgen_assets.variant_runner import render_previews, validate_scenario
    from resources.llm import LLMClient, LLMSettings

    request = GenerationRequest.model_validate_json(request_json)
    client = LLMClient(LLMSettings(), asset="direct", partition=request.scenario_id)
    steps = {}
    t = time.monotonic()
    save_request(request)
    steps["generation_request"], t = time.monotonic() - t, time.monotonic()
    plan, _ = make_plan(client, request)
    steps["scenario_plan"], t = time.monotonic() - t, time.monotonic()
    script = make_script(client, request, plan)
    steps["scenario_script"], t = time.monotonic() - t, time.monotonic()
    validation = validate_scenario(request.scenario_id, plan, script, variants_for(request, plan))
    steps["validated_scenario"], t = time.monotonic() - t, time.monotonic()
    render_previews(validation)
    steps["scenario_preview"] = time.monotonic() - t
    return {"steps": steps, "valid": validation.valid, "total": len(validation.variants)}


def run_direct(count: int, variants: int, parallel: int) -> dict:
    """The no-Dagster baseline (run in its own process by ``main``)."""
    from benchgen_assets import layout
    from benchgen_assets.manager import make_requests, warm_up
    from resources.run_workers import preload_table_libraries
    from benchgen_assets.tables import manifest_table, traces_table

    t0 = time.monotonic()
    warm_up(dagster=False)  # the same start as the CLI's, without Dagster
    requests = make_requests(tier=1, family=None, prompt=None, count=count, seed=0, variants=variants)
    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("fork")) as pool:
        mapped = pool.map(_direct_scenario, [r.model_dump_json() for r in requests])
        preload_table_libraries()  # as the CLI does: while the workers run
        results = list(mapped)
    manifest_table(), traces_table()
    stage, validation = defaultdict(float), defaultdict(float)
    for r in results:
        for k, s in r["steps"].items():
            stage[k] += s
    # Where a variant's time goes (its ValidationReport's stage timings), summed over every variant.
    for report in layout.benchmarks_root().rglob("validation.json"):
        for k, s in json.loads(report.read_text())["timings_s"].items():
            validation[k] += s
    return {"wall_s": time.monotonic() - t0, "valid": sum(r["valid"] for r in results),
            "total": sum(r["total"] for r in results), "stage_s": dict(stage), "validation_s": dict(validation)}


def _load() -> float:
    return os.getloadavg()[0]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], env: dict) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd``; its wall time, the CPU time of it and its children, the load before and after."""
    load, cpu, t0 = _load(), _children_cpu_s(), time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return proc, {"wall_s": time.monotonic() - t0, "cpu_s": _children_cpu_s() - cpu, "load": (load, _load())}


def _made_instance(home: Path) -> None:
    """The project's instance in ``home``, its databases made (as a user's exists before a run: ~0.2 s once)."""
    import shutil

    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    saved = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)  # the project's storage reads its base_dir from it
    try:
        with DagsterInstance.get():
            pass
    finally:
        if saved is None:
            os.environ.pop("DAGSTER_HOME")
        else:
            os.environ["DAGSTER_HOME"] = saved


def run_dagster(count: int, variants: int, parallel: int, tmp: Path, env: dict) -> dict:
    env = {**env, "DAGSTER_HOME": str(tmp / "dagster_home"), "BENCHGEN_DATASETS": str(tmp / "datasets_dagster")}
    _made_instance(tmp / "dagster_home")
    cmd = [sys.executable, "-m", "benchgen_assets.manager", "generate", "--tier", "1", "--count", str(count),
           "--variants", str(variants), "--parallel", str(parallel)]
    proc, timing = _timed(cmd, env)
    if proc.returncode != 0:
        raise SystemExit(f"generate failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    out = proc.stdout
    m = re.search(r"variants:\s+(\d+)/(\d+) valid", out)
    stages = re.search(r"stage time \(summed over runs, s\): (.*)", out).group(1)
    stage_s = {k: float(v) for k, v in (item.rsplit(" ", 1) for item in stages.split(", "))}
    tokens = re.search(r"tokens:\s+(\d+)", out).group(1)
    runs = int(re.search(r": (\d+) run\(s\), ", out).group(1))
    start_up = float(re.search(r"start-up done at ([\d.]+) s", out).group(1))
    return {**timing, "valid": int(m.group(1)), "total": int(m.group(2)), "stage_s": stage_s,
            "tokens": int(tokens), "start_up_s": start_up, "runs": runs, "stdout": out}


def run_direct_process(count: int, variants: int, parallel: int, tmp: Path, env: dict) -> dict:
    proc, timing = _timed([sys.executable, __file__, "--count", str(count), "--variants", str(variants), "--parallel",
                           str(parallel), "--direct-only", str(tmp / "datasets_direct")], env)
    if proc.returncode != 0:
        raise SystemExit(f"direct run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), **timing}  # wall: the whole process, as for the CLI


def _stage_line(stage_s: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(stage_s.items(), key=lambda kv: -kv[1]))


def _load_text(runs: list[dict]) -> str:
    return ", ".join(f"{r['load'][0]:.1f}→{r['load'][1]:.1f}" for r in runs)


def _venv_has_bytecode() -> bool:
    import dagster

    return any(Path(dagster.__file__).parent.glob("__pycache__/*.pyc"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; median and best are reported")
    ap.add_argument("--pycache", metavar="DIR", help="write and use compiled bytecode in DIR (PYTHONPYCACHEPREFIX)")
    ap.add_argument("--write", action="store_true", help="update the section in bench/RESULTS.md")
    ap.add_argument("--direct-only", metavar="DATASETS", help=argparse.SUPPRESS)  # the baseline's own process
    args = ap.parse_args()
    if args.direct_only:
        os.environ["BENCHGEN_DATASETS"] = args.direct_only
        print(json.dumps(run_direct(args.count, args.variants, args.parallel)))
        return

    from benchgen_assets.sandbox import ensure_server

    ensure_server()
    env = dict(os.environ)
    env.pop("BENCHGEN_LLM_MODEL", None)
    if args.pycache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(args.pycache).resolve())
    bytecode = (f"bytecode cached in `{args.pycache}` (PYTHONPYCACHEPREFIX)" if args.pycache else
                "venv bytecode compiled at install (scripts/setup.sh)" if _venv_has_bytecode() else
                "no bytecode cache: PYTHONDONTWRITEBYTECODE=1 and no .pyc in the venv, so every process compiles "
                "every module it imports" if env.get("PYTHONDONTWRITEBYTECODE") else "Python's default bytecode cache")
    dagster_runs, direct_runs = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
            dagster_runs.append(run_dagster(args.count, args.variants, args.parallel, Path(tmp), env))
            print(dagster_runs[-1]["stdout"])
            direct_runs.append(run_direct_process(args.count, args.variants, args.parallel, Path(tmp), env))
        d, b = dagster_runs[-1], direct_runs[-1]
        print(f"run {len(dagster_runs)}: dagster {d['wall_s']:.1f} s (cpu {d['cpu_s']:.1f} s, load {_load_text([d])}), "
              f"direct {b['wall_s']:.1f} s (cpu {b['cpu_s']:.1f} s, load {_load_text([b])})", flush=True)

    def median(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    best = min(range(len(dagster_runs)), key=lambda i: dagster_runs[i]["wall_s"])
    dagster, direct = dagster_runs[best], direct_runs[best]
    ratios = [d["wall_s"] / b["wall_s"] for d, b in zip(dagster_runs, direct_runs)]
    cmd = (f"python -m benchgen_assets.manager generate --tier 1 --count {args.count} --variants {args.variants} "
           f"--parallel {args.parallel}")
    flags = f" --repeat {args.repeat}" + (f" --pycache {args.pycache}" if args.pycache else "")
    text = f"""Command: `.venv/bin/python bench/bench_generate.py --count {args.count} --variants {args.variants} --parallel {args.parallel}{flags} --write`
(runs `{cmd}` on the offline author in a fresh temp DAGSTER_HOME, its databases made beforehand, and datasets
root, then the same requests through the domain functions directly, with the same warm-up minus Dagster's
definitions; machine: 2 cores, 24 GiB, other work on the machine shows in the load;
{args.repeat} run(s) of each, {time.strftime('%Y-%m-%d %H:%M')}; {bytecode}; the build server was started
beforehand, its build jobs are not in the CPU times).

Load average (1 min) before→after each run — through Dagster: {_load_text(dagster_runs)}; direct: {_load_text(direct_runs)}.

| | wall time, median | wall time, best | CPU time (best run) | start-up (best run) | valid / variants | yield |
|---|---|---|---|---|---|---|
| through Dagster (CLI, {args.parallel} workers) | {median(dagster_runs, 'wall_s'):.1f} s | {dagster['wall_s']:.1f} s | {dagster['cpu_s']:.1f} s | {dagster['start_up_s']:.1f} s | {dagster['valid']}/{dagster['total']} | {dagster['valid'] / max(dagster['total'], 1):.0%} |
| direct domain calls ({args.parallel} workers) | {median(direct_runs, 'wall_s'):.1f} s | {direct['wall_s']:.1f} s | {direct['cpu_s']:.1f} s | | {direct['valid']}/{direct['total']} | {direct['valid'] / max(direct['total'], 1):.0%} |

Orchestration overhead (Dagster / direct wall time, same repeat): **{ratios[best]:.2f}×** in the best run
(all runs: {", ".join(f"{r:.2f}" for r in ratios)}). Targets: < 30 s for 10 scenarios through Dagster with the
oracle on (issue 9), ≤ 1.25× direct (issue 11).
Both wall times include process start and the warm-up before the workers fork (imports of
litellm, mujoco, trimesh, and Dagster for the CLI). The CLI's workers fork from a process that warms up
while the CLI saves the requests and opens the instance ("start-up": the CLI's own part). The CLI runs
{dagster['runs']} Dagster run(s) over partition ranges (one per worker; each scenario stays its own partition with
its materializations, metadata and check evaluations) plus the manifest/traces run; Dagster adds per run a run
record, a step and an input load per stage, and per scenario its event-log writes and the IO manager's pickles.

Per-stage time of the best run, summed over the scenarios (s) — Dagster steps: {_stage_line(dagster['stage_s'])}.
Direct: {_stage_line(direct['stage_s'])}. Inside the variants (direct, their ValidationReports' stage times
summed; `build` is the sandboxed build123d run in the build server, `solvability` the joint sweep, the start
checks and the scripted oracle; validation of the probe variant is under scenario_script above):
{_stage_line(direct['validation_s'])}. LLM tokens (offline author, approximate): {dagster['tokens']}.
"""
    print(text)
    if args.write:
        from bench.results import write_section

        write_section(SECTION, f"{SECTION}\n\n{text.strip()}\n")


if __name__ == "__main__":
    main()
