"""Composed scenes from free text on the offline author: how many drawn variants validate and solve.

    .venv/bin/python bench/bench_compose.py [--variants 10] ["a drawer with a peg-in-hole on top" ...]

For each prompt the offline planner and coder (real litellm path) write the composed script; the
variants ``draw_variants`` gives for the plan's scale limits run through the real sandbox, strict
validation and the oracle's solvability stage (in a temp datasets dir). Prints, per prompt: valid
and solved variants, oracle time to success (median / max), wall time and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = ["a drawer with a peg-in-hole on top", "two levers", "a door and a drawer",
           "a latched box next to a lever", "a peg in hole next to a block stacking"]


def run(prompt: str, count: int, work: Path) -> str:
    from benchgen_assets.authoring.agents import coder_messages, plan_scenario, write_script
    from benchgen_assets.authoring.variants import draw_variants
    from benchgen_assets.records import GenerationRequest
    from benchgen_assets.variant_runner import run_variant
    from resources.llm import LLMClient, LLMSettings

    client = LLMClient(LLMSettings(use_cache=False), asset="bench_compose")
    plan, _ = plan_scenario(client, GenerationRequest(scenario_id="bench", prompt=prompt, seed=1))
    reply, _ = write_script(client, coder_messages(plan))
    t0 = time.monotonic()
    solved, failures = [], []
    for v in draw_variants(11, count, plan.scale_limits):
        report = run_variant(reply.code, "bench", v, work / v.variant_id).report
        if report.passed:
            solved.append(report.oracle.time_to_success_s)
        else:
            failed = report.first_failure()
            failures.append(f"    {v.variant_id} scale={v.scale}: {failed.name}: {failed.message[:140]}")
    times = f"median {statistics.median(solved):.2f} s, max {max(solved):.2f} s" if solved else "-"
    return "\n".join([f"{prompt!r}: {len(solved)}/{count} valid and solved; oracle time to success {times}; "
                      f"wall {time.monotonic() - t0:.0f} s; load {os.getloadavg()[0]:.2f}", *failures])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="*", default=PROMPTS)
    parser.add_argument("--variants", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        os.environ["BENCHGEN_DATASETS"] = tmp
        for prompt in args.prompts:
            print(run(prompt, args.variants, Path(tmp) / "work"), flush=True)


if __name__ == "__main__":
    main()
