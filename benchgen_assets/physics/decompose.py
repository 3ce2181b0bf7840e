"""Convex decomposition of non-convex parts: exact for stepped prisms, CoACD otherwise; cached by mesh content.

MuJoCo collides every mesh as its convex hull, so a block with a hole collides as a solid block
unless it is split into convex pieces. Most CAD parts here are stepped prisms along some axis
(every face is either parallel or perpendicular to it: blocks with vertical holes, boxes with
cavities, frames): such a part is cut into slabs between its cap levels, each slab's constant
cross-section into trapezoids by a sweep, and adjacent trapezoids are merged while their union
stays convex. That is exact (the pieces tile the mesh: a round hole keeps the STL's own polygon,
≤ 0.1 mm off the CAD circle), deterministic and takes milliseconds. A few slanted faces (a
chamfered rim, a drill point) are stair-stepped, each step up to 0.5 mm inside the slanted wall,
so the slabs around them (a blind hole's floor and bore) stay exact instead of the whole part
going to CoACD, whose hulls bridge floors and bores. Any other mesh goes to CoACD,
in a subprocess with a time limit (native code whose run time can explode on some shapes).
Results are cached by the STL's sha256 plus the method version and CoACD parameters.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
import trimesh
from pydantic import BaseModel, ConfigDict

from resources.atomic import atomic_write_bytes
from resources.paths import datasets_root

_WORKER = Path(__file__).with_name("_coacd_worker.py")

# Below this volume / convex-hull-volume ratio a part is treated as non-convex.
CONVEXITY_RATIO = 0.97
# Bump when the prism decomposition changes its output, so cached results of the old one are not reused.
PRISM_METHOD_VERSION = 2
_TOL_MM = 1e-4  # coordinates closer than this are one level; STL vertices are float32 (~1e-5 mm noise)
_NORMAL_TOL = 1e-5  # |normal · axis| within this of 0 or 1 counts as perpendicular or parallel
_MAX_SWEEP_WORK = 4_000_000  # strips × section segments; larger cross-sections go to CoACD
_STEP_TOL_MM = 0.5  # how far inside a slanted wall a stair step may stay
_NEAR_LOW, _NEAR_HIGH = (0.02, 0.03, 0.01), (0.98, 0.97, 0.99)  # section heights just inside a step's ends
_MAX_STEPS = 24  # stair steps per part along one axis; more slanted height than that goes to CoACD
_MAX_PIECES = 1024  # more convex pieces than this cost more in collision detection than CoACD's approximation


class CoacdParams(BaseModel):
    """Decomposition settings; every field enters the cache key.

    ``exact_prisms`` tries the exact stepped-prism decomposition first; the CoACD settings apply
    to every other mesh. CoACD's were measured on this 2-core machine: on a thin-walled block with
    a Ø24 mm hole they take 5–16 s (49 pieces) whatever the preprocessing (``preprocess_mode="off"``
    gained nothing measurable); a smaller search (resolution 500, 8 nodes × 30 iterations) halves
    that but with 19 pieces cuts still longer chords across the hole. Their pieces shave 0.3–1.5 mm
    off a round hole's radius, which is why the prism path comes first.
    """

    model_config = ConfigDict(frozen=True)

    exact_prisms: bool = True
    threshold: float = 0.05
    max_convex_hull: int = -1
    preprocess_mode: str = "auto"
    preprocess_resolution: int = 50
    resolution: int = 1000
    mcts_nodes: int = 10
    mcts_iterations: int = 60
    mcts_max_depth: int = 2
    seed: int = 0


class ConvexPiece(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    vertices: np.ndarray  # (n, 3) float64, same units and frame as the input mesh
    faces: np.ndarray  # (m, 3) int64, outward wound


class Decomposition(BaseModel):
    pieces: list[ConvexPiece]
    cache_hit: bool
    seconds: float
    cache_file: str
    method: Literal["prism", "coacd"] = "coacd"


class DecompositionError(RuntimeError):
    pass


def default_cache_dir() -> Path:
    return datasets_root() / "cache" / "coacd"


def is_non_convex(volume: float, hull_volume: float) -> bool:
    return hull_volume > 0 and volume / hull_volume < CONVEXITY_RATIO


def decompose_convex(stl_path: Path, *, cache_dir: Path | None = None, params: CoacdParams | None = None,
                     timeout_s: float = 120.0) -> Decomposition:
    """Split the closed mesh in ``stl_path`` into convex pieces (in the STL's own units and frame)."""
    params = params or CoacdParams()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data = Path(stl_path).read_bytes()
    settings = {"prism_version": PRISM_METHOD_VERSION, **params.model_dump()}
    key = hashlib.sha256(data + json.dumps(settings, sort_keys=True).encode()).hexdigest()
    cache_file = cache_dir / key[:2] / f"{key}.npz"
    start = time.perf_counter()
    if cache_file.exists():
        method, pieces = _load_pieces(cache_file.read_bytes())
        return Decomposition(pieces=pieces, cache_hit=True, seconds=time.perf_counter() - start,
                             cache_file=str(cache_file), method=method)

    mesh = trimesh.load(io.BytesIO(data), file_type="stl", force="mesh")
    pieces = prism_pieces(mesh) if params.exact_prisms else None
    method = "prism"
    if pieces is None:
        method, pieces = "coacd", _run_coacd(mesh, params, timeout_s, Path(stl_path).name)
    if not pieces:
        raise DecompositionError(f"{method} returned no pieces for {Path(stl_path).name}")
    atomic_write_bytes(cache_file, _dump_pieces(method, pieces))
    return Decomposition(pieces=pieces, cache_hit=False, seconds=time.perf_counter() - start,
                         cache_file=str(cache_file), method=method)


def prism_pieces(mesh: trimesh.Trimesh) -> list[ConvexPiece] | None:
    """Convex pieces of a stepped prism, slanted faces stair-stepped (along x, y or z: the axis giving
    fewest pieces), else None."""
    best = None
    for axis in (2, 0, 1):
        pieces = _stepped_prism(mesh, axis)
        if pieces is not None and (best is None or len(pieces) < len(best)):
            best = pieces
    return best


def _stepped_prism(mesh: trimesh.Trimesh, axis: int) -> list[ConvexPiece] | None:
    along = np.abs(np.asarray(mesh.face_normals)[:, axis])
    areas = np.asarray(mesh.area_faces)
    real = areas > 1e-9  # a zero-area sliver triangle has no meaningful normal
    caps = real & (along > 1 - _NORMAL_TOL)
    slanted = real & ~caps & (along >= _NORMAL_TOL)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    levels = _cluster(vertices[mesh.faces[caps]][..., axis].ravel())
    if slanted.any():
        # Chamfers, countersinks, drill points: stair-step them instead of handing the whole part
        # to CoACD, whose hulls bridge the floors and bores of the exact slabs around them.
        steps = _staircase_levels(vertices[mesh.faces[slanted]][..., axis], along[slanted])
        if steps is None:
            return None
        levels = _cluster(np.concatenate([levels, steps]))
    # (u, v, h) is a cyclic permutation of (x, y, z): counter-clockwise in (u, v) seen from +h stays so.
    cols = [(axis + 1) % 3, (axis + 2) % 3, axis]
    uvh = vertices[:, cols]
    triangles = uvh[mesh.faces]

    stacks: list[list] = []  # [polygon, low, high]: prisms still open at the previous level
    closed: list[list] = []
    slopes = triangles[slanted][..., 2]
    slope_spans = np.column_stack([slopes.min(axis=1), slopes.max(axis=1)])
    for low, high in zip(levels[:-1], levels[1:]):
        if np.any((slope_spans[:, 0] < high - _TOL_MM) & (slope_spans[:, 1] > low + _TOL_MM)):
            # a stair step: of its two end sections, the one with less material, so the step stays
            # inside the slanted walls (a chamfered rim stays open) and a floor below stays exact
            ends = [_slab_polygons(triangles, low, high, fractions) for fractions in (_NEAR_LOW, _NEAR_HIGH)]
            polygons = min((p for p in ends if p is not None), key=lambda ps: sum(_area(p) for p in ps), default=None)
        else:
            polygons = _slab_polygons(triangles, low, high, (0.5, 0.382, 0.618))
        if polygons is None:
            return None
        # a cross-section repeated from the slab below extends its prism instead of starting a new one
        below = {_polygon_key(s[0]): s for s in stacks}
        stacks_now = []
        for polygon in polygons:
            stack = below.pop(_polygon_key(polygon), None)
            if stack is not None:
                stack[2] = high
            else:
                stack = [polygon, low, high]
            stacks_now.append(stack)
        closed.extend(below.values())
        stacks = stacks_now
    closed.extend(stacks)

    prisms_volume = sum(_area(p) * (hi - lo) for p, lo, hi in closed)
    # steps stay up to _STEP_TOL_MM inside a slanted wall, so they may miss that much volume
    allowed = 1e-5 * abs(mesh.volume) + _STEP_TOL_MM * float(areas[slanted].sum())
    if not closed or abs(prisms_volume - abs(mesh.volume)) > allowed or len(closed) > _MAX_PIECES:
        return None  # the pieces do not tile the mesh: not what this method assumes
    order = np.argsort(cols)  # (u, v, h) columns back to (x, y, z)
    return [_extrude(polygon, lo, hi, order) for polygon, lo, hi in sorted(closed, key=_piece_sort_key)]


def _staircase_levels(heights: np.ndarray, along: np.ndarray) -> np.ndarray | None:
    """Extra cut levels over the height spans of slanted faces, close enough that a step's end
    section lies within _STEP_TOL_MM of the wall over the whole step; None when that takes more
    than _MAX_STEPS (a dome or a shallow slope: CoACD's job)."""
    # a wall with normal component n along the axis moves n / sqrt(1 - n²) sideways per unit height
    step = _STEP_TOL_MM * np.sqrt(1 - along**2) / along
    spans = sorted(zip(heights.min(axis=1), heights.max(axis=1), step))
    levels, count = [], 0
    start, end, finest = spans[0]
    for lo, hi, h in spans[1:] + [(np.inf, np.inf, np.inf)]:
        if lo <= end:  # overlapping spans share one staircase, as fine as its shallowest face needs
            end, finest = max(end, hi), min(finest, h)
            continue
        n = max(1, int(np.ceil((end - start) / finest - 1e-9)))
        count += n
        if count > _MAX_STEPS:
            return None
        levels.append(np.linspace(start, end, n + 1))
        start, end, finest = lo, hi, h
    return np.concatenate(levels)


def _cluster(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values, those closer than the tolerance merged (first one kept)."""
    values = np.sort(values)
    if values.size == 0:
        return values
    return values[np.concatenate([[True], np.diff(values) > _TOL_MM])]


def _slab_polygons(triangles: np.ndarray, low: float, high: float, fractions: tuple) -> list[np.ndarray] | None:
    """Convex polygons tiling the slab's cross-section at the first usable fraction of its height."""
    segments = _section(triangles, low, high, fractions)
    if segments is None:
        return None
    return min((p for p in (_sweep(segments, 0), _sweep(segments, 1)) if p is not None), key=len, default=None)


def _section(triangles: np.ndarray, low: float, high: float, fractions: tuple) -> np.ndarray | None:
    """Segments (k, 2, 2) where the walls cut a plane h = const strictly between two levels."""
    heights = triangles[..., 2]
    for fraction in fractions:
        h = low + (high - low) * fraction
        if not np.any(np.abs(heights - h) < 1e-6):
            break
    else:
        return None
    d = heights - h
    crossing = (d.min(axis=1) < 0) & (d.max(axis=1) > 0)
    tri, d = triangles[crossing], d[crossing]
    points = []
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cut = d[:, a] * d[:, b] < 0
        t = np.where(cut, d[:, a] / np.where(cut, d[:, a] - d[:, b], 1.0), 0.0)
        points.append((cut, tri[:, a, :2] + (tri[:, b, :2] - tri[:, a, :2]) * t[:, None]))
    cuts = np.stack([c for c, _ in points], axis=1)
    if not np.all(cuts.sum(axis=1) == 2):
        return None
    pts = np.stack([p for _, p in points], axis=1)  # (k, 3, 2)
    return pts[cuts].reshape(-1, 2, 2)


def _sweep(segments: np.ndarray, s: int) -> list[np.ndarray] | None:
    """Convex polygons tiling the region the closed segment loops enclose (even-odd rule).

    Strips between consecutive endpoint coordinates along axis ``s`` are cut into trapezoids
    between pairs of segments; a trapezoid joins the piece to its left when they share that
    whole side and the union stays convex.
    """
    t = 1 - s
    a, b = segments[:, 0], segments[:, 1]
    swap = (a[:, s] > b[:, s])[:, None]
    p0, p1 = np.where(swap, b, a), np.where(swap, a, b)
    p0, p1 = p0[p1[:, s] - p0[:, s] > _TOL_MM], p1[p1[:, s] - p0[:, s] > _TOL_MM]  # sides along t bound no strip
    cuts = _cluster(np.concatenate([p0[:, s], p1[:, s]]))
    if len(cuts) * len(p0) > _MAX_SWEEP_WORK:
        return None
    slope = (p1[:, t] - p0[:, t]) / (p1[:, s] - p0[:, s])

    done: list[list] = []
    open_pieces: list[list] = []  # each [lower chain, upper chain] of (s, t) points, left to right
    for xa, xb in zip(cuts[:-1], cuts[1:]):
        spanning = np.nonzero((p0[:, s] <= xa + _TOL_MM) & (p1[:, s] >= xb - _TOL_MM))[0]
        if len(spanning) % 2:
            return None
        ya = p0[spanning, t] + slope[spanning] * (xa - p0[spanning, s])
        yb = p0[spanning, t] + slope[spanning] * (xb - p0[spanning, s])
        order = np.argsort((ya + yb) / 2, kind="stable")
        next_open = []
        for lo, hi in zip(order[0::2], order[1::2]):
            piece = _extend(open_pieces, (xa, ya[lo]), (xb, yb[lo]), (xa, ya[hi]), (xb, yb[hi]))
            if piece is None:
                piece = [[(xa, ya[lo]), (xb, yb[lo])], [(xa, ya[hi]), (xb, yb[hi])]]
            next_open.append(piece)
        done.extend(open_pieces)
        open_pieces = next_open
    done.extend(open_pieces)
    polygons = []
    for lower, upper in done:
        ring = _drop_collinear(lower + upper[::-1])
        if len(ring) >= 3:
            st = np.asarray(ring, dtype=np.float64)
            polygons.append(st if s == 0 else st[:, ::-1][::-1])  # (u, v), counter-clockwise
    return polygons


def _extend(open_pieces: list[list], lower_a, lower_b, upper_a, upper_b) -> list | None:
    """Append the trapezoid to the open piece whose right side is its left side, if still convex; pop it."""
    for i, (lower, upper) in enumerate(open_pieces):
        if abs(lower[-1][1] - lower_a[1]) > _TOL_MM or abs(upper[-1][1] - upper_a[1]) > _TOL_MM:
            continue
        # lower chain must turn left (or go straight) at the joint, the upper chain right
        if _turn(lower[-2], lower[-1], lower_b) < -_TOL_MM or _turn(upper[-2], upper[-1], upper_b) > _TOL_MM:
            return None
        open_pieces.pop(i)
        return [lower + [lower_b], upper + [upper_b]]
    return None


def _turn(p, q, r) -> float:
    """Signed distance of r from the line p→q (positive: r lies to the left)."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    return (dx * (r[1] - p[1]) - dy * (r[0] - p[0])) / max(np.hypot(dx, dy), 1e-12)


def _drop_collinear(ring: list) -> list:
    points = [p for i, p in enumerate(ring) if np.hypot(p[0] - ring[i - 1][0], p[1] - ring[i - 1][1]) > _TOL_MM]
    changed = True
    while changed and len(points) >= 3:
        changed = False
        for i in range(len(points)):
            if abs(_turn(points[i - 1], points[(i + 1) % len(points)], points[i])) <= _TOL_MM:
                points.pop(i)
                changed = True
                break
    return points


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def _polygon_key(polygon: np.ndarray) -> tuple:
    return tuple(np.round(polygon / (10 * _TOL_MM)).astype(np.int64).ravel())


def _piece_sort_key(piece: list) -> tuple:
    polygon, low, _high = piece
    return (round(low, 6), *np.round(polygon.min(axis=0), 6))


def _extrude(polygon: np.ndarray, low: float, high: float, order: np.ndarray) -> ConvexPiece:
    n = len(polygon)
    uvh = np.concatenate([np.column_stack([polygon, np.full(n, low)]), np.column_stack([polygon, np.full(n, high)])])
    faces = [(0, i + 1, i) for i in range(1, n - 1)] + [(n, n + i, n + i + 1) for i in range(1, n - 1)]
    for i in range(n):
        j = (i + 1) % n
        faces += [(i, j, n + j), (i, n + j, n + i)]
    return ConvexPiece(vertices=uvh[:, order], faces=np.asarray(faces, dtype=np.int64))


def _run_coacd(mesh: trimesh.Trimesh, params: CoacdParams, timeout_s: float, name: str) -> list[ConvexPiece]:
    coacd_args = params.model_dump(exclude={"exact_prisms"})
    with tempfile.TemporaryDirectory(prefix="coacd-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, vertices=np.asarray(mesh.vertices, dtype=np.float64), faces=np.asarray(mesh.faces, dtype=np.int64))
        try:
            proc = subprocess.run([sys.executable, str(_WORKER), str(src), str(dst), json.dumps(coacd_args)],
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise DecompositionError(f"CoACD did not finish within {timeout_s:.0f} s on {name}") from None
        if proc.returncode != 0 or not dst.exists():
            tail = (proc.stderr or proc.stdout).strip()[-800:]
            raise DecompositionError(f"CoACD failed on {name} (exit {proc.returncode}): {tail}")
        return _load_pieces(dst.read_bytes())[1]


def _dump_pieces(method: str, pieces: list[ConvexPiece]) -> bytes:
    arrays = {"method": np.array(method), "count": np.array(len(pieces))}
    for i, piece in enumerate(pieces):
        arrays[f"v{i}"] = np.asarray(piece.vertices, dtype=np.float64)
        arrays[f"f{i}"] = np.asarray(piece.faces, dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _load_pieces(npz_bytes: bytes) -> tuple[str, list[ConvexPiece]]:
    with np.load(io.BytesIO(npz_bytes)) as data:
        method = str(data["method"]) if "method" in data else "coacd"
        return method, [ConvexPiece(vertices=data[f"v{i}"], faces=data[f"f{i}"]) for i in range(int(data["count"]))]
