"""Convex decomposition benchmark: every scenario family's non-convex parts, before and after.

    .venv/bin/python bench/bench_decompose.py [--seeds 3] [--before-seeds 3] [--write]

Builds each family for seeds 0..N-1 at three scale vectors in the real sandbox, then decomposes
every non-convex part with a cold cache:
- "after": the default settings (exact stepped-prism path, CoACD fallback) on every variant;
- "before": CoACD alone with the previous settings (preprocess "auto"), on scale (1, 1, 1) of the
  first ``--before-seeds`` seeds (it takes seconds per part).
For round holes it reports the hole radius the collision pieces leave open, measured along 360
rays from the hole axis at five heights (error = CAD radius − open radius, positive = narrower),
whether a peg held 2 mm over the hole and let go slides in, and for blind holes (the family's own
and a chamfered-rim variant of it) how far above the CAD floor that peg comes to rest. ``--write`` puts the figures into
the "Convex decomposition" section of bench/RESULTS.md (other sections are left alone).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Convex decomposition"
SCALES = ((1.0, 1.0, 1.0), (0.5, 1.5, 2.0), (2.0, 0.5, 0.5))
BEFORE = {"exact_prisms": False, "preprocess_mode": "auto"}
BLIND_SCALES = ((1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (0.5, 0.5, 0.5), (2.0, 0.5, 0.5), (0.5, 1.5, 2.0))


def block_top_mm(build) -> float:
    return next(p for p in build.parts if p.name == "block").bbox_max_mm[2]


def hole_floor_mm(build) -> float:
    return block_top_mm(build) - build.parameters["hole_depth_mm"]


def open_hole_radius(pieces, z_levels, rays: int = 360) -> float:
    """Smallest distance from the hole axis (x = y = 0) at which a ray in the plane hits any piece."""
    import numpy as np
    from scipy.spatial import ConvexHull

    angles = np.linspace(0, 2 * np.pi, rays, endpoint=False)
    directions = np.column_stack([np.cos(angles), np.sin(angles), np.zeros(rays)])
    nearest = np.inf
    for piece in pieces:
        planes = ConvexHull(piece.vertices).equations  # a·x + b ≤ 0 inside
        a, b = planes[:, :3], planes[:, 3]
        along = directions @ a.T  # (rays, planes)
        for z in z_levels:
            offset = a[:, 2] * z + b  # a·p0 + b for p0 = (0, 0, z)
            with np.errstate(divide="ignore", invalid="ignore"):
                limit = -offset / along
            enter = np.where(along < 0, limit, -np.inf).max(axis=1)
            leave = np.where(along > 0, limit, np.inf).min(axis=1)
            outside_parallel = ((along == 0) & (offset > 0)).any(axis=1)
            hit = (enter <= leave) & (leave >= 0) & ~outside_parallel
            if hit.any():
                nearest = min(nearest, float(np.maximum(enter[hit], 0.0).min()))
    return nearest


def dropped_peg_bottom_mm(xml_path: Path, build) -> float:
    """Let the peg go upright 2 mm over the hole's centre; the height of its bottom face after 2 s (mm)."""
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(xml_path))
    data = mujoco.MjData(model)
    block = next(p for p in build.parts if p.name == "block")
    peg = next(p for p in build.parts if p.name == "peg")
    com_above_bottom = peg.center_of_mass_mm[2] - peg.bbox_min_mm[2]
    adr = model.joint("peg_free").qposadr[0]
    data.qpos[adr:adr + 7] = [0.0, 0.0, (block.bbox_max_mm[2] + 2.0 + com_above_bottom) / 1000, 1, 0, 0, 0]
    mujoco.mj_step(model, data, nstep=int(2.0 / model.opt.timestep))
    return float(data.body("peg").xpos[2] * 1000 - com_above_bottom)


def chamfered_rim(source: str) -> str:
    """The peg_in_hole family with a 1.5 mm chamfer on the hole's rim: no longer a stepped prism."""
    cut = "    block = Box(length, width, height, align=BOTTOM) - Pos(0, 0, cut_bottom) * cutter\n"
    if cut not in source or "from build123d import " not in source:
        raise SystemExit("bench_decompose: peg_in_hole.py changed; update chamfered_rim()")
    return source.replace("from build123d import ", "from build123d import Axis, chamfer, ").replace(cut, cut + (
        "    rim = block.edges().group_by(Axis.Z)[-1].filter_by(lambda e: e.center().X ** 2 + e.center().Y ** 2 < (1.5 * hole_r) ** 2)\n"
        "    block = chamfer(rim, 1.5)\n"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--before-seeds", type=int, default=3)
    ap.add_argument("--blind-seeds", type=int, default=6, help="seeds of the chamfered-rim blind-hole variants")
    ap.add_argument("--write", action="store_true", help="update the section in bench/RESULTS.md")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-decompose-"))
    os.environ["BENCHGEN_SANDBOX_DIR"] = str(work / "sandbox")  # a private build server
    from benchgen_assets.families import FAMILIES, family_source
    from benchgen_assets.physics import CoacdParams, compose_mjcf, decompose_convex
    from benchgen_assets.physics.decompose import is_non_convex
    from benchgen_assets.sandbox import run_build, shutdown_server

    builds, chamfered = {}, {}
    try:
        for name, seed, scale in itertools.product(FAMILIES, range(args.seeds), SCALES):
            out = run_build(family_source(name), seed, scale, work / "cad" / f"{name}-{seed}-{'x'.join(map(str, scale))}")
            if not hasattr(out, "parts"):
                raise SystemExit(f"{name} seed {seed} scale {scale} did not build: {out}")
            builds[(name, seed, scale)] = out
        for seed, scale in itertools.product(range(args.blind_seeds), BLIND_SCALES):
            out = run_build(chamfered_rim(family_source("peg_in_hole")), seed, scale, work / "chamfered" / f"{seed}-{scale}")
            if not hasattr(out, "parts"):
                raise SystemExit(f"chamfered peg_in_hole seed {seed} scale {scale} did not build: {out}")
            if not out.parameters["through_hole"]:
                chamfered[(seed, scale)] = out
    finally:
        shutdown_server()

    rows: dict[str, dict[str, list]] = {}  # family → {"after_s", "after_n", "before_s", "before_n", ...}
    hole_errors: dict[str, list[float]] = {"before": [], "after": []}
    inserted: dict[str, list[bool]] = {"before": [], "after": []}
    floor_gaps: dict[tuple[str, str], list[float]] = {(kind, label): [] for kind in ("shipped", "chamfered rim")
                                                      for label in ("before", "after")}
    methods: set[str] = set()
    for (name, seed, scale), build in builds.items():
        row = rows.setdefault(name, {k: [] for k in ("after_s", "after_n", "before_s", "before_n")})
        labels = ["after"] + (["before"] if seed < args.before_seeds and scale == (1.0, 1.0, 1.0) else [])
        for label in labels:
            params = CoacdParams(**BEFORE) if label == "before" else CoacdParams()
            cache = work / "cache" / label / f"{name}-{seed}-{scale}"
            for part in build.parts:
                if not is_non_convex(part.volume_mm3, part.convex_hull_volume_mm3):
                    continue
                result = decompose_convex(Path(build.out_dir) / part.stl_file, cache_dir=cache, params=params)
                row[f"{label}_s"].append(result.seconds)
                row[f"{label}_n"].append(len(result.pieces))
                if label == "after":
                    methods.add(result.method)
                if name == "peg_in_hole" and part.name == "block" and build.parameters["hole_shape"] == "round":
                    height = part.bbox_max_mm[2]
                    depth = build.parameters["hole_depth_mm"]
                    levels = [height - depth + f * depth for f in (0.1, 0.3, 0.5, 0.7, 0.9)]
                    radius = open_hole_radius(result.pieces, levels)
                    hole_errors[label].append(build.parameters["hole_radius_mm"] - radius)
            if name == "peg_in_hole":
                xml = compose_mjcf(build, work / "mjcf" / label / f"{seed}-{scale}", cache_dir=cache, coacd_params=params)
                bottom = dropped_peg_bottom_mm(xml, build)
                inserted[label].append(bottom < block_top_mm(build) - 10.0)
                if not build.parameters["through_hole"]:
                    floor_gaps[("shipped", label)].append(bottom - hole_floor_mm(build))
    for (seed, scale), build in chamfered.items():
        for label in ["after"] + (["before"] if seed < args.before_seeds else []):
            params = CoacdParams(**BEFORE) if label == "before" else CoacdParams()
            xml = compose_mjcf(build, work / "mjcf-chamfered" / label / f"{seed}-{scale}",
                               cache_dir=work / "cache-chamfered" / label, coacd_params=params)
            floor_gaps[("chamfered rim", label)].append(dropped_peg_bottom_mm(xml, build) - hole_floor_mm(build))

    def summary(values: list[float], fmt: str) -> str:
        return f"{fmt.format(statistics.median(values))} / {fmt.format(max(values))}" if values else "–"

    lines = [
        f"Command: `.venv/bin/python bench/bench_decompose.py --seeds {args.seeds} --before-seeds {args.before_seeds} "
        f"--blind-seeds {args.blind_seeds}`",
        "",
        f"Machine: 2 cores, 24 GiB, no GPU (other work may share the machine; load average at the end "
        f"{os.getloadavg()[0]:.2f}). Parts: every non-convex part of "
        f"every family, seeds 0–{args.seeds - 1} × scales {', '.join('×'.join(f'{v:g}' for v in s) for s in SCALES)}; "
        f"\"before\" (CoACD alone, previous settings) on scale 1×1×1 of seeds 0–{args.before_seeds - 1}. "
        f"Cold cache. Methods used after: {', '.join(sorted(methods))}.",
        "",
        "| family | parts after | seconds after (median / max) | pieces after (median / max) "
        "| parts before | seconds before (median / max) | pieces before (median / max) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        if not row["after_s"]:
            lines.append(f"| {name} | 0 (all convex) | – | – | 0 | – | – |")
            continue
        lines.append(f"| {name} | {len(row['after_s'])} | {summary(row['after_s'], '{:.3f}')} | "
                     f"{summary(row['after_n'], '{:.0f}')} | {len(row['before_s'])} | "
                     f"{summary(row['before_s'], '{:.2f}')} | {summary(row['before_n'], '{:.0f}')} |")
    total_after = sum(sum(r["after_s"]) for r in rows.values())
    lines += [
        "",
        f"Total decomposition time after, all {sum(len(r['after_s']) for r in rows.values())} parts: {total_after:.2f} s.",
        "",
        "Round holes (peg_in_hole), collision radius error = CAD radius − radius left open by the pieces "
        "(360 rays × 5 heights; positive = narrower), max over variants; pegs held 2 mm over the hole and let go:",
        "",
        "| | round holes | max radius error | pegs that slid in (all hole shapes) |",
        "|---|---|---|---|",
    ]
    for label in ("before", "after"):
        errs = hole_errors[label]
        lines.append(f"| {label} | {len(errs)} | {max(errs):.3f} mm | {sum(inserted[label])}/{len(inserted[label])} |"
                     if errs else f"| {label} | 0 | – | {sum(inserted[label])}/{len(inserted[label])} |")
    lines += [
        "",
        f"Blind holes: how far above the CAD floor a peg let go upright 2 mm over the hole comes to rest "
        f"(mm; 2 s of simulation; ≤ 0.5 mm is the target). \"shipped\": the family's blind-hole variants above; "
        f"\"chamfered rim\": the family with a 1.5 mm chamfer on the hole's rim (not a stepped prism, so it went to "
        f"CoACD whole before), seeds 0–{args.blind_seeds - 1} × scales "
        f"{', '.join('×'.join(f'{v:g}' for v in s) for s in BLIND_SCALES)}, \"before\" on seeds 0–{args.before_seeds - 1}:",
        "",
        "| blind holes | variants before | above floor before (median / max) | variants after | above floor after (median / max) |",
        "|---|---|---|---|---|",
    ]
    for kind in ("shipped", "chamfered rim"):
        before, after = floor_gaps[(kind, "before")], floor_gaps[(kind, "after")]
        lines.append(f"| {kind} | {len(before)} | {summary(before, '{:.3f}')} | {len(after)} | {summary(after, '{:.3f}')} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        block = f"{SECTION}\n\n{text.strip()}\n\n"
        updated = pattern.sub(lambda _m: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
        RESULTS.write_text(updated)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n(bench ran {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
