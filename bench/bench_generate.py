"""Scenario generator benchmark: ``generate --tier 1 --count 10`` on the offline author.

    .venv/bin/python bench/bench_generate.py [--count 10] [--variants 3] [--parallel 3] [--write]

1. Through Dagster: the CLI as a user runs it, in a fresh temp DAGSTER_HOME and datasets root
   (wall time, per-stage time summed over the runs, yield).
2. Direct: the same requests through the same domain functions, no Dagster, the same number of
   forked workers, another fresh datasets root (so the LLM cache is cold in both).
The ratio of the two wall times is the orchestration overhead. The shared build server is started
before either run, so neither pays build123d's import. ``--write`` puts the figures into the
"Scenario generator" section of bench/RESULTS.md (other sections are left alone).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
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
    from benchgen_assets.manager import make_requests, warm_up
    from benchgen_assets.tables import manifest_table, traces_table

    t0 = time.monotonic()
    warm_up()
    requests = make_requests(tier=1, family=None, prompt=None, count=count, seed=0, variants=variants)
    with ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_direct_scenario, [r.model_dump_json() for r in requests]))
    manifest_table(), traces_table()
    stage = defaultdict(float)
    for r in results:
        for k, s in r["steps"].items():
            stage[k] += s
    return {"wall_s": time.monotonic() - t0, "valid": sum(r["valid"] for r in results),
            "total": sum(r["total"] for r in results), "stage_s": dict(stage)}


def run_dagster(count: int, variants: int, parallel: int, tmp: Path) -> dict:
    env = {**os.environ, "DAGSTER_HOME": str(tmp / "dagster_home"), "BENCHGEN_DATASETS": str(tmp / "datasets_dagster")}
    env.pop("BENCHGEN_LLM_MODEL", None)
    cmd = [sys.executable, "-m", "benchgen_assets.manager", "generate", "--tier", "1", "--count", str(count),
           "--variants", str(variants), "--parallel", str(parallel)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"generate failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    out = proc.stdout
    m = re.search(r"variants:\s+(\d+)/(\d+) valid", out)
    stages = re.search(r"stage time \(summed over runs, s\): (.*)", out).group(1)
    stage_s = {k: float(v) for k, v in (item.rsplit(" ", 1) for item in stages.split(", "))}
    tokens = re.search(r"tokens:\s+(\d+)", out).group(1)
    warm = float(re.search(r"warm-up done at ([\d.]+) s", out).group(1))
    return {"wall_s": wall, "valid": int(m.group(1)), "total": int(m.group(2)), "stage_s": stage_s,
            "tokens": int(tokens), "warm_up_s": warm, "stdout": out}


def _stage_line(stage_s: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sorted(stage_s.items(), key=lambda kv: -kv[1]))


def write_results(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = f"{SECTION}\n\n{text.strip()}\n\n"
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    RESULTS.write_text(updated)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="update the section in bench/RESULTS.md")
    ap.add_argument("--direct-only", metavar="DATASETS", help=argparse.SUPPRESS)  # the baseline's own process
    args = ap.parse_args()
    if args.direct_only:
        os.environ["BENCHGEN_DATASETS"] = args.direct_only
        print(json.dumps(run_direct(args.count, args.variants, args.parallel)))
        return

    from benchgen_assets.sandbox import ensure_server

    ensure_server()
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        tmp = Path(tmp)
        dagster = run_dagster(args.count, args.variants, args.parallel, tmp)
        print(dagster["stdout"])
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, __file__, "--count", str(args.count), "--variants", str(args.variants),
                               "--parallel", str(args.parallel), "--direct-only", str(tmp / "datasets_direct")],
                              cwd=ROOT, capture_output=True, text=True, check=True)
        direct = json.loads(proc.stdout.strip().splitlines()[-1])
        direct["wall_s"] = time.monotonic() - t0  # the whole process, as for the CLI
    ratio = dagster["wall_s"] / direct["wall_s"]
    cmd = (f"python -m benchgen_assets.manager generate --tier 1 --count {args.count} --variants {args.variants} "
           f"--parallel {args.parallel}")
    text = f"""Command: `.venv/bin/python bench/bench_generate.py --count {args.count} --variants {args.variants} --parallel {args.parallel} --write`
(runs `{cmd}` on the offline author in a fresh temp DAGSTER_HOME + datasets root; machine: 2 cores,
24 GiB, shared with other work; one run; the build server was started beforehand).

| | wall time | valid / variants | yield |
|---|---|---|---|
| through Dagster (CLI, {args.parallel} workers) | {dagster['wall_s']:.1f} s | {dagster['valid']}/{dagster['total']} | {dagster['valid'] / max(dagster['total'], 1):.0%} |
| direct domain calls ({args.parallel} workers) | {direct['wall_s']:.1f} s | {direct['valid']}/{direct['total']} | {direct['valid'] / max(direct['total'], 1):.0%} |

Orchestration overhead (Dagster / direct wall time): **{ratio:.2f}×**. Target: < 60 s for 10 scenarios.
Both wall times include process start and the warm-up before the workers fork (imports of
litellm, mujoco, pandas and the first litellm call; {dagster['warm_up_s']:.1f} s in the CLI, which also imports
Dagster and opens the instance). Dagster adds per run: a run record, event-log writes per step, the
IO manager's pickles, the check step, and the manifest/traces run at the end.

Per-stage time, summed over the scenarios (s) — Dagster steps: {_stage_line(dagster['stage_s'])}.
Direct: {_stage_line(direct['stage_s'])}. LLM tokens (offline author, approximate): {dagster['tokens']}.
"""
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
