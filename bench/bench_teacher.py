"""Agentic teacher on the offline teacher: throughput, prompt tokens per accepted tree, outcome shares.

    .venv/bin/python bench/bench_teacher.py [--episodes datasets/oxe] [--workers 2] [--fault-domain 0.3] [--write]

1. End to end through Dagster (``teacher_assets.manager.run``: one run over a range of episodes in
   each of ``--workers`` processes, then the proposer dataset) on a fresh Dagster home and datasets root, once without
   faults and once with ``--fault-domain`` (share of wrong answers: exercises critic and repair).
2. Prompt tokens per accepted tree: the stages run in-process and every prompt the client sends
   (system prompt + reply-format instruction + input block + contact sheet) is counted with
   ``litellm.token_counter`` for ``--count-model`` (default gpt-4o).
``--write`` replaces the "Agentic teacher" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.results import write_section  # noqa: E402

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.pop("BENCHGEN_LLM_MODEL", None)


def end_to_end(episodes: Path, workers: int, fault_domain: float) -> dict:
    from resources.llm_options import LLMOptions
    from teacher_assets.manager import RunOptions, run

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "dagster_home")
        os.environ["BENCHGEN_DATASETS"] = str(Path(tmp) / "datasets")
        (Path(tmp) / "dagster_home").mkdir()
        (Path(tmp) / "dagster_home" / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
        result = run(episodes, workers=workers, out=io.StringIO(),
                     options=RunOptions(episodes_dir=str(episodes), llm=LLMOptions(fault_domain=fault_domain, fault_seed=7)))
    runs = result["runs"]
    n = len(runs)
    count = lambda s: sum(r["status"] == s for r in runs)  # noqa: E731
    return {"episodes": n, "wall_s": result["wall_s"], "per_min": n / result["wall_s"] * 60,
            "accepted": count("accepted"), "skipped": count("skipped"), "invalid": count("invalid"),
            "rejected": count("rejected"), "failed": count("failed"), "repaired": sum(r["repaired"] for r in runs)}


def prompt_tokens(episodes: Path, count_model: str) -> dict:
    """Every prompt of every stage, counted as the hosted model would be billed for it."""
    import litellm

    from resources.llm import LLMClient, LLMSettings
    from resources.llm.client import _reply_format, _with_format  # the exact conversation the client sends
    from teacher_assets import pipeline as p
    from teacher_assets.episodes import discover_episodes

    counted: list[int] = []

    class CountingClient(LLMClient):
        def complete(self, *, role, messages, schema, prompt_version):
            counted.append(litellm.token_counter(model=count_model, messages=_with_format(messages, _reply_format(schema)[1])))
            return super().complete(role=role, messages=messages, schema=schema, prompt_version=prompt_version)

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BENCHGEN_DATASETS"] = tmp
        client = CountingClient(LLMSettings(use_cache=False))
        per_episode, accepted = {}, 0
        for ep in discover_episodes(episodes):
            start = len(counted)
            state = p.load_stage(episodes, ep.id)
            for stage in (p.feasibility_stage, p.scene_stage, p.design_stage, p.refine_stage, p.conformance_stage, p.score_stage):
                state = stage(client, state)
            per_episode[ep.id] = (state.status, sum(counted[start:]))
            accepted += state.status == "accepted"
    total = sum(counted)
    acc_tokens = [t for s, t in per_episode.values() if s == "accepted"]
    return {"calls": len(counted), "total": total, "accepted": accepted,
            "per_accepted_all_spend": total / max(1, accepted),
            "per_accepted_own": sum(acc_tokens) / max(1, len(acc_tokens)),
            "per_skipped": [t for s, t in per_episode.values() if s == "skipped"]}


def render(args, runs: dict[float, dict], tokens: dict) -> str:
    lines = [
        "## Agentic teacher",
        "",
        f"Command: `.venv/bin/python bench/bench_teacher.py --workers {args.workers} --fault-domain {args.fault_domain} --write`",
        "",
        f"Machine: 2 cores, 24 GiB, no GPU ({platform.python_version()}; other work may share the machine). "
        f"Episodes: `{args.episodes.relative_to(ROOT) if args.episodes.is_relative_to(ROOT) else args.episodes}`, "
        "offline teacher (`offline/author`), end to end through Dagster (a range run in each of "
        f"{args.workers} worker processes, then `proposer_dataset`; cold caches; both rows in one process, so only "
        "the first pays the imports, which the forked workers inherit).",
        "",
        "| faults (domain share) | episodes | wall time | episodes/min | accepted | repaired | rejected | skipped (infeasible) | invalid | failed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for domain, r in runs.items():
        n = r["episodes"]
        share = lambda k: f"{r[k]} ({r[k] / n:.0%})"  # noqa: E731
        lines.append(f"| {domain} | {n} | {r['wall_s']:.1f} s | {r['per_min']:.1f} | {share('accepted')} | "
                     f"{share('repaired')} | {share('rejected')} | {share('skipped')} | {share('invalid')} | {r['failed']} |")
    lines += [
        "",
        f"Prompt tokens (`litellm.token_counter`, model `{args.count_model}`, the real conversations incl. the "
        "contact sheet image and the reply-format instruction; no faults, no cache):",
        "",
        f"- per accepted tree, its own calls: **{tokens['per_accepted_own']:.0f}**",
        f"- per accepted tree, all spend (incl. skipped episodes): {tokens['per_accepted_all_spend']:.0f} "
        f"({tokens['total']} tokens over {tokens['calls']} calls, {tokens['accepted']} accepted)",
        f"- an infeasible episode stops after agent A: {', '.join(str(t) for t in tokens['per_skipped'])} tokens each",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--episodes", type=Path, default=ROOT / "datasets" / "oxe")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fault-domain", type=float, default=0.3)
    ap.add_argument("--count-model", default="gpt-4o")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    args.episodes = args.episodes.resolve()
    runs = {domain: end_to_end(args.episodes, args.workers, domain) for domain in (0.0, args.fault_domain)}
    tokens = prompt_tokens(args.episodes, args.count_model)
    text = render(args, runs, tokens)
    print(text)
    if args.write:
        write_section("## Agentic teacher", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
