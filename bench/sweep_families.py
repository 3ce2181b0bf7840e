"""Strict-validation sweep of every scenario family over seeds × the extremes of its scale limits.

    .venv/bin/python bench/sweep_families.py [--seeds 10] [--drawn 0] [--workers 2] [--family NAME ...]
                                             [--case NAME:SEED:SX,SY,SZ ...] [--scripts DIR] [--write]

For each family (``benchgen_assets/families``) every seed 0..N-1 is built in the real sandbox at
the 8 corners of its declared ``[scale_min, scale_max]`` box plus (1, 1, 1) clamped to it, and
validated by ``validate_variant`` (exact decomposition, schema, compile, 1 s stability, then
solvability: the task does not start solved and its scripted oracle reaches the goal in time) in a
temp dir. ``--drawn K`` adds the variants ``draw_variants`` gives for base seeds 0..K-1 (4 each) —
what the planner would really ask for. ``--case`` runs just the given variants. Each variant prints
one line (PASS/FAIL, failing stage, message, settled and peak |qvel|, penetration, oracle time); a
summary per family follows: valid (every stage before solvability passed), solvable (all passed) and
the oracle's time to success. ``--write`` puts the summary into the "Family sweep" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Family sweep"
SOLVABILITY = "solvability"
DRAWN_PER_BASE_SEED = 4


def corner_scales(lo: tuple, hi: tuple) -> list[tuple]:
    """The 8 corners of the scale box, then the nominal scale clamped into it."""
    corners = [tuple(float(c) for c in corner) for corner in itertools.product(*zip(lo, hi))]
    nominal = tuple(min(max(1.0, a), b) for a, b in zip(lo, hi))
    return list(dict.fromkeys([*corners, nominal]))


def cases_for(names: list[str], seeds: int, drawn: int) -> list[tuple[str, int, tuple]]:
    from benchgen_assets.authoring.variants import draw_variants
    from benchgen_assets.families import FAMILIES
    from benchgen_assets.records import ScaleLimits

    cases = []
    for name in names:
        info = FAMILIES[name]
        cases += [(name, seed, scale) for seed in range(seeds) for scale in corner_scales(info.scale_min, info.scale_max)]
        limits = ScaleLimits(min=info.scale_min, max=info.scale_max)
        for base in range(drawn):
            cases += [(name, v.seed, tuple(v.scale)) for v in draw_variants(base, DRAWN_PER_BASE_SEED, limits)]
    return cases


def validate_case(case: tuple[str, int, tuple], work_root: str, scripts_dir: str | None) -> dict:
    """Build and validate one variant; a plain dict so it crosses the process boundary cheaply."""
    from benchgen_assets.families import family_source
    from benchgen_assets.physics import stability_check, validate_variant
    from benchgen_assets.records import SandboxError
    from benchgen_assets.sandbox import run_build

    name, seed, scale = case
    work = Path(tempfile.mkdtemp(prefix=f"{name}-{seed}-", dir=work_root))
    start = time.perf_counter()
    source = (Path(scripts_dir) / f"{name}.py").read_text() if scripts_dir else family_source(name)
    built = run_build(source, seed, scale, work / "cad")
    row = {"family": name, "seed": seed, "scale": scale}
    if isinstance(built, SandboxError):
        return {**row, "passed": False, "stage": f"build/{built.kind}", "message": built.message,
                "seconds": time.perf_counter() - start}
    report = validate_variant(built, work, scenario_id=name, variant_id=f"s{seed}",
                              cache_dir=Path(work_root) / "coacd-cache")
    failed = next((s for s in report.stages if not s.passed), None)
    # the report keeps only the settled velocity; the peak (limit 3.0) shows how close a pass was
    peak = stability_check(work / "scene.xml").peak_velocity if (work / "scene.xml").exists() else None
    solved_in = report.oracle.time_to_success_s if report.oracle is not None else None
    return {**row, "peak_velocity": peak, "passed": report.passed, "stage": failed.name if failed else "", "message": failed.message if failed else "",
            "valid": failed is None or failed.name == SOLVABILITY, "oracle_s": solved_in,
            "max_velocity": report.max_velocity, "penetration_mm": (report.max_penetration_m or 0.0) * 1000,
            "seconds": time.perf_counter() - start}


def parse_case(text: str) -> tuple[str, int, tuple]:
    name, seed, scale = text.split(":")
    return name, int(seed), tuple(float(s) for s in scale.split(","))


def fmt_scale(scale: tuple) -> str:
    return "×".join(f"{s:g}" for s in scale)


def share(count: int, total: int) -> str:
    return f"{count}/{total} ({100 * count / total:.0f}%)" if total else "–"


def failure_groups(bad: list[dict], shown: int = 3) -> list[str]:
    """Failures grouped by stage and reason (one reason often fails a whole family), a few variants each."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in bad:
        groups.setdefault((r["stage"], r["message"].split(":")[0][:80].replace("|", "\\|")), []).append(r)
    return [f"{stage} ×{len(rs)} ({reason}; e.g. " + ", ".join(f"{r['seed']} @ {fmt_scale(r['scale'])}" for r in rs[:shown])
            + (", …" if len(rs) > shown else "") + ")" for (stage, reason), rs in groups.items()]


def summary_table(rows: list[dict], names: list[str]) -> list[str]:
    from benchgen_assets.families import FAMILIES

    lines = ["| family | tier | variants | valid | solvable | oracle time to success median / max | "
             "worst settled / peak \\|qvel\\| | worst penetration | failures (stage ×count (reason; seed @ scale)) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        mine = [r for r in rows if r["family"] == name]
        bad = [r for r in mine if not r["passed"]]
        valid = sum(1 for r in mine if r.get("valid"))
        times = [r["oracle_s"] for r in mine if r["passed"] and r.get("oracle_s") is not None]
        oracle = f"{statistics.median(times):.2f} / {max(times):.2f} s" if times else "–"
        settled = max((r.get("max_velocity") or 0.0 for r in mine), default=0.0)
        peak = max((r.get("peak_velocity") or 0.0 for r in mine), default=0.0)
        pen = max((r.get("penetration_mm") or 0.0 for r in mine), default=0.0)
        listed = "; ".join(failure_groups(bad))
        tier = FAMILIES[name].tier if name in FAMILIES else "?"
        lines.append(f"| {name} | {tier} | {len(mine)} | {share(valid, len(mine))} | {share(len(mine) - len(bad), len(mine))} | "
                     f"{oracle} | {settled:.3g} / {peak:.3g} | {pen:.2f} mm | {listed or '–'} |")
    return lines


def write_section(body: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    section = "\n".join([SECTION, "", *body]) + "\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _m: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main() -> int:
    from benchgen_assets.families import FAMILIES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--drawn", type=int, default=0, help="also the drawn variants of base seeds 0..K-1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--family", action="append", choices=sorted(FAMILIES))
    parser.add_argument("--case", action="append", type=parse_case, help="NAME:SEED:SX,SY,SZ (repeatable)")
    parser.add_argument("--scripts", help="read the family scripts from this folder instead (e.g. an older version)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    names = args.family or list(FAMILIES)
    cases = args.case or cases_for(names, args.seeds, args.drawn)
    names = list(dict.fromkeys(c[0] for c in cases))
    with tempfile.TemporaryDirectory(prefix="family-sweep-") as work_root:
        # a private build server, so the sweep neither waits on nor restarts anyone else's
        os.environ.setdefault("BENCHGEN_SANDBOX_DIR", str(Path(work_root) / "sandbox"))
        from benchgen_assets.sandbox import ensure_server, shutdown_server

        ensure_server()
        load_start = f"{os.getloadavg()[0]:.1f}"  # the machine is shared: figures come with its load
        start = time.perf_counter()
        rows = []
        try:
            with ProcessPoolExecutor(max_workers=max(1, min(args.workers, 2))) as pool:
                for row in pool.map(validate_case, cases, itertools.repeat(work_root), itertools.repeat(args.scripts)):
                    rows.append(row)
                    figures = (f"qvel {row['max_velocity']:.3g} peak {row['peak_velocity']:.3g} "
                               f"pen {row['penetration_mm']:.2f} mm"
                               if row.get("max_velocity") is not None else "")
                    if row.get("oracle_s") is not None:
                        figures += f" oracle {row['oracle_s']:.2f} s"
                    print(f"{'PASS' if row['passed'] else 'FAIL'} {row['family']:<15} seed {row['seed']:<10} "
                          f"{fmt_scale(row['scale']):<20} {row['seconds']:5.1f} s {figures} "
                          f"{row['stage']}{': ' + row['message'] if row['message'] else ''}", flush=True)
        finally:
            shutdown_server()
        wall = time.perf_counter() - start
    load = f"{os.getloadavg()[0]:.1f}"

    table = summary_table(rows, names)
    passed = sum(r["passed"] for r in rows)
    print("\n" + "\n".join(table))
    print(f"\n{passed}/{len(rows)} variants passed in {wall:.0f} s (load average at the end: {load})")
    if args.write and not (args.case or args.scripts):
        drawn = f" + `draw_variants` over base seeds 0–{args.drawn - 1} ({DRAWN_PER_BASE_SEED} each)" if args.drawn else ""
        command = " ".join(["bench/sweep_families.py", *sys.argv[1:]]).replace(" --write", "")
        write_section([
            f"Command: `.venv/bin/python {command} --write`",
            "",
            f"Machine: 2 cores, 24 GiB, no GPU ({platform.python_version()}; shared with other work), "
            f"{min(args.workers, 2)} worker processes, private build server, cold decomposition cache. "
            f"Variants: seeds 0–{args.seeds - 1} × the 8 corners of each family's declared scale limits + (1, 1, 1)"
            f"{drawn}; strict `validate_variant` (exact decomposition, schema, compile, 1 s stability, "
            f"solvability: not solved at the start, scripted oracle reaches the goal within the time limit). "
            f"Load average at the start / end: {load_start} / {load}. "
            "*valid*: every stage before solvability passed; *solvable*: all stages passed; oracle times of "
            "the solvable variants (simulated seconds).",
            "",
            *table,
            "",
            f"Total: **{passed}/{len(rows)}** passed, wall time {wall:.0f} s.",
        ])
    return 0 if passed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
