"""BuildOutput (STL in mm, world frame) → MuJoCo MJCF (metres) with convex collision pieces.

Layout of what ``compose_mjcf`` writes into ``out_dir``:
  scene.xml              one body per part, floor plane at the table top (z = 0), light, camera;
                         a <site> per Scene site, joint / connect equalities for couplings and pins
  task.json              the TaskSpec (versioned), when the scene has a task
  meshes/<part>.stl      the part in metres, in its body frame (origin at the part's centre of mass)
  meshes/<part>_cNN.stl  convex collision pieces of a non-convex part (CoACD)

Body frames are axis-aligned with the world and sit at each part's centre of mass, so nested
bodies only need a translation. Inertia is written explicitly (``<inertial>``) from the original
closed mesh with the BuildOutput's mass (``inertiafromgeom="false"``): overlapping or slightly
oversized convex pieces then cannot distort mass or inertia. Output is deterministic: fixed
float formatting, part order as built, CoACD seeded and cached.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import trimesh
from lxml import etree

from benchgen_assets.records import BuildOutput, BuiltPart
from benchgen_assets.tasks import TASK_FILE
from resources.atomic import atomic_write_bytes, replace_dir

from .decompose import CoacdParams, decompose_convex, is_non_convex

MM = 0.001  # build123d millimetres → MJCF metres
TIMESTEP = 0.002
CONTACT_TIMECONST = 0.005
HINGE_DAMPING, HINGE_ARMATURE = 0.01, 1e-4  # N·m·s/rad, kg·m²: keeps light doors/lids calm
SLIDE_DAMPING, SLIDE_ARMATURE = 0.5, 1e-3  # N·s/m, kg
MIN_PIECE_FRACTION = 1e-4  # drop CoACD slivers smaller than this share of the part's volume
COLLISION_GROUP, VISUAL_GROUP = 3, 2  # renderer shows groups 0-2 by default, so pieces stay hidden
SITE_GROUP, SITE_SIZE_M = 4, 0.002  # task sites: hidden in previews, shown when a viewer enables group 4


class CompositionError(ValueError):
    """The BuildOutput cannot become a valid MJCF (bad parent graph, unreadable mesh …)."""


def compose_mjcf(build: BuildOutput, out_dir: Path, *, decompose: bool = True, cache_dir: Path | None = None,
                 coacd_params: CoacdParams | None = None) -> Path:
    out_dir = Path(out_dir)
    mesh_files: dict[str, bytes] = {}
    order = _parents_first(build.parts)
    by_name = {p.name: p for p in build.parts}
    stems = _mesh_stems(build.parts)

    root = etree.Element("mujoco", model=_safe_model_name(build.scene_name))
    etree.SubElement(root, "compiler", angle="radian", autolimits="true", inertiafromgeom="false", meshdir="meshes")
    etree.SubElement(root, "option", timestep=_f(TIMESTEP), integrator="implicitfast", cone="elliptic")
    # Stiffer contacts than MuJoCo's default (time constant 0.02 s) so small parts do not sink
    # millimetres into each other on impact; 0.005 s is still 2.5 × the timestep, as MuJoCo advises.
    default = etree.SubElement(root, "default")
    etree.SubElement(default, "geom", solref=f"{_f(CONTACT_TIMECONST)} 1")
    visual = etree.SubElement(root, "visual")
    etree.SubElement(visual, "global", offwidth="1280", offheight="960")
    etree.SubElement(visual, "quality", shadowsize="2048")
    asset = etree.SubElement(root, "asset")
    etree.SubElement(asset, "texture", name="table_tex", type="2d", builtin="checker", width="256", height="256",
                     rgb1="0.62 0.64 0.66", rgb2="0.52 0.54 0.56")
    etree.SubElement(asset, "material", name="table", texture="table_tex", texrepeat="8 8", reflectance="0.05")
    world = etree.SubElement(root, "worldbody")
    etree.SubElement(world, "light", name="key", type="directional", pos="0 0 2", dir="-0.3 0.4 -1",
                     diffuse="0.8 0.8 0.8", castshadow="true")
    _add_camera(world, build.parts)
    etree.SubElement(world, "geom", name="table", type="plane", size="0 0 0.05", material="table",
                     friction="0.8 0.005 0.0001", group="0")

    bodies: dict[str, etree._Element] = {}
    for part in order:
        parent_part = by_name[part.parent] if part.parent else None
        parent_el = bodies[part.parent] if part.parent else world
        com = np.asarray(part.center_of_mass_mm, dtype=float)
        origin = com - (np.asarray(parent_part.center_of_mass_mm, dtype=float) if parent_part else 0.0)
        body = etree.SubElement(parent_el, "body", name=part.name, pos=_v(origin * MM))
        bodies[part.name] = body

        mesh = _load_mesh(Path(build.out_dir) / part.stl_file, part.name)
        if part.joint == "free":
            etree.SubElement(body, "freejoint", name=f"{part.name}_free")
        elif part.joint in ("hinge", "slide"):
            _add_joint(body, part, com)
        _add_inertial(body, part, mesh, com)

        stem = stems[part.name]
        mesh_files[f"{stem}.stl"] = _stl_bytes((mesh.vertices - com) * MM, mesh.faces)
        etree.SubElement(asset, "mesh", name=stem, file=f"{stem}.stl")
        geom = {"name": f"{part.name}_visual", "type": "mesh", "mesh": stem, "rgba": _v(part.rgba)}
        friction = f"{_f(part.friction)} 0.005 0.0001"
        if decompose and is_non_convex(part.volume_mm3, part.convex_hull_volume_mm3):
            etree.SubElement(body, "geom", **geom, contype="0", conaffinity="0", group=str(VISUAL_GROUP))
            pieces = decompose_convex(Path(build.out_dir) / part.stl_file, cache_dir=cache_dir, params=coacd_params).pieces
            kept = [p for p in pieces if _hull_volume(p.vertices) >= MIN_PIECE_FRACTION * part.volume_mm3]
            for i, piece in enumerate(kept):
                piece_stem = f"{stem}_c{i:02d}"
                mesh_files[f"{piece_stem}.stl"] = _stl_bytes((piece.vertices - com) * MM, piece.faces)
                etree.SubElement(asset, "mesh", name=piece_stem, file=f"{piece_stem}.stl")
                etree.SubElement(body, "geom", name=f"{part.name}_col{i:02d}", type="mesh", mesh=piece_stem,
                                 rgba=_v(part.rgba), friction=friction, group=str(COLLISION_GROUP))
        else:
            geom["name"] = f"{part.name}_geom"
            etree.SubElement(body, "geom", **geom, friction=friction, group="0")
        for site in build.sites:
            if site.part == part.name:
                etree.SubElement(body, "site", name=site.name, pos=_v((np.asarray(site.pos_mm, dtype=float) - com) * MM),
                                 size=_f(SITE_SIZE_M), rgba="1 0.2 0.2 1", group=str(SITE_GROUP))
    _add_equalities(root, build, by_name)
    _exclude_linked_contacts(root, build)

    # Swap the whole meshes/ folder in, so meshes of an earlier composition never linger.
    replace_dir(out_dir / "meshes", lambda tmp: [(tmp / name).write_bytes(data) for name, data in sorted(mesh_files.items())])
    xml = etree.tostring(root, pretty_print=True, xml_declaration=False, encoding="unicode")
    xml_path = out_dir / "scene.xml"
    atomic_write_bytes(xml_path, xml.encode("utf-8"))
    task_path = out_dir / TASK_FILE
    if build.task is not None:
        atomic_write_bytes(task_path, (build.task.model_dump_json(indent=2) + "\n").encode("utf-8"))
    else:
        task_path.unlink(missing_ok=True)
    return xml_path


def _add_equalities(root: etree._Element, build: BuildOutput, by_name: dict[str, BuiltPart]) -> None:
    """Couplings become joint equalities, pins connect equalities (closing a kinematic loop)."""
    if not build.couplings and not build.pins:
        return
    equality = etree.SubElement(root, "equality")
    for i, c in enumerate(build.couplings):
        leader, follower = by_name.get(c.leader), by_name.get(c.follower)
        if leader is None or follower is None or {leader.joint, follower.joint} - {"hinge", "slide"}:
            raise CompositionError(f"coupling {c.leader!r} -> {c.follower!r} needs two hinge/slide parts")
        # MuJoCo's slides are in metres, the contract's in mm: q1[m or rad] = ratio' × q2[m or rad]
        ratio = c.ratio * (MM if follower.joint == "slide" else 1.0) / (MM if leader.joint == "slide" else 1.0)
        etree.SubElement(equality, "joint", name=f"couple{i:02d}_{c.leader}_{c.follower}", joint1=f"{c.follower}_{follower.joint}",
                         joint2=f"{c.leader}_{leader.joint}", polycoef=f"0 {_f(ratio)} 0 0 0")
    for i, pin in enumerate(build.pins):
        a = by_name.get(pin.part_a)
        if a is None or pin.part_b not in by_name:
            raise CompositionError(f"pin {pin.part_a!r} - {pin.part_b!r}: unknown part")
        # the anchor is in body1's frame, which sits at its centre of mass with world axes as built
        anchor = (np.asarray(pin.pos_mm, dtype=float) - np.asarray(a.center_of_mass_mm, dtype=float)) * MM
        etree.SubElement(equality, "connect", name=f"pin{i:02d}_{pin.part_a}_{pin.part_b}", body1=pin.part_a, body2=pin.part_b,
                         anchor=_v(anchor))


def _exclude_linked_contacts(root: etree._Element, build: BuildOutput) -> None:
    """No contacts between coupled parts (meshing gears' collision hulls overlap; the coupling carries
    the motion) nor between pinned parts (they meet at the pin), as MuJoCo already does for a body and
    its jointed parent."""
    pairs = [(c.leader, c.follower) for c in build.couplings] + [(p.part_a, p.part_b) for p in build.pins]
    if not pairs:
        return
    contact = etree.SubElement(root, "contact")
    for body1, body2 in dict.fromkeys(pairs):
        etree.SubElement(contact, "exclude", name=f"linked_{body1}_{body2}", body1=body1, body2=body2)


def _parents_first(parts: list[BuiltPart]) -> list[BuiltPart]:
    """Parts ordered so each parent precedes its children (stable w.r.t. build order)."""
    names = [p.name for p in parts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise CompositionError(f"duplicate part names: {dupes}")
    by_name = {p.name: p for p in parts}
    for p in parts:
        if p.parent is not None and p.parent not in by_name:
            raise CompositionError(f"part {p.name!r} has unknown parent {p.parent!r} (parts: {names})")
        if p.parent is not None and p.joint == "free":
            raise CompositionError(f"part {p.name!r} is free but has parent {p.parent!r}: free bodies attach to the world")
    ordered, placed = [], set()
    while len(ordered) < len(parts):
        ready = [p for p in parts if p.name not in placed and (p.parent is None or p.parent in placed)]
        if not ready:
            cyclic = sorted(p.name for p in parts if p.name not in placed)
            raise CompositionError(f"parent links form a cycle among parts {cyclic}")
        ordered.extend(ready)
        placed.update(p.name for p in ready)
    return ordered


def _mesh_stems(parts: list[BuiltPart]) -> dict[str, str]:
    """File-system safe, unique mesh names: index keeps them unique whatever the part names are."""
    return {p.name: f"p{i:02d}_{re.sub(r'[^A-Za-z0-9_-]+', '_', p.name)[:40]}" for i, p in enumerate(parts)}


def _safe_model_name(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "scene"


def _load_mesh(path: Path, part_name: str) -> trimesh.Trimesh:
    try:
        mesh = trimesh.load(path, file_type="stl", force="mesh")
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise CompositionError(f"part {part_name!r}: cannot read STL {path.name}: {exc}") from exc
    if len(mesh.faces) == 0 or not mesh.is_volume:
        raise CompositionError(f"part {part_name!r}: {path.name} is not a closed, consistently wound volume")
    return mesh


def _add_joint(body: etree._Element, part: BuiltPart, com: np.ndarray) -> None:
    axis = np.asarray(part.joint_axis, dtype=float)
    norm = float(np.linalg.norm(axis))
    if not math.isfinite(norm) or norm < 1e-9:
        raise CompositionError(f"part {part.name!r}: joint_axis {part.joint_axis} is not a direction")
    attrs = {"name": f"{part.name}_{part.joint}", "type": part.joint,
             "pos": _v((np.asarray(part.joint_pos_mm, dtype=float) - com) * MM), "axis": _v(axis / norm)}
    if part.joint_range is not None:
        lo, hi = part.joint_range
        if not lo < hi:
            raise CompositionError(f"part {part.name!r}: joint_range {part.joint_range} must be (low, high) with low < high")
        scale = MM if part.joint == "slide" else 1.0
        attrs["range"] = _v((lo * scale, hi * scale))
    damping, armature = (HINGE_DAMPING, HINGE_ARMATURE) if part.joint == "hinge" else (SLIDE_DAMPING, SLIDE_ARMATURE)
    etree.SubElement(body, "joint", **attrs, damping=_f(damping), armature=_f(armature))


def _add_inertial(body: etree._Element, part: BuiltPart, mesh: trimesh.Trimesh, com: np.ndarray) -> None:
    """Inertia of the closed mesh (uniform density) scaled to the part's mass, about its centroid."""
    if not part.mass_kg > 0:
        raise CompositionError(f"part {part.name!r}: mass_kg must be positive, got {part.mass_kg}")
    props_mass = float(mesh.mass)  # trimesh: volume × density 1, mm³
    inertia = np.asarray(mesh.moment_inertia) / props_mass * part.mass_kg * MM * MM  # kg·m²
    inertia[np.abs(inertia) < 1e-9 * np.abs(np.diag(inertia)).max()] = 0.0  # float noise off a symmetric part
    full = (inertia[0, 0], inertia[1, 1], inertia[2, 2], inertia[0, 1], inertia[0, 2], inertia[1, 2])
    etree.SubElement(body, "inertial", pos=_v((np.asarray(mesh.center_mass) - com) * MM), mass=_f(part.mass_kg),
                     fullinertia=" ".join(_f(x, 6) for x in full))


def _add_camera(world: etree._Element, parts: list[BuiltPart]) -> None:
    """A fixed camera in front, to the right and above, framing every part's bounding box."""
    if parts:
        lo = np.min([p.bbox_min_mm for p in parts], axis=0) * MM
        hi = np.max([p.bbox_max_mm for p in parts], axis=0) * MM
    else:
        lo, hi = np.array([-0.1, -0.1, 0.0]), np.array([0.1, 0.1, 0.1])
    center = (lo + hi) / 2
    radius = max(float(np.linalg.norm(hi - lo)) / 2, 0.05)
    fovy = 45.0
    direction = np.array([0.55, -0.75, 0.62])
    direction /= np.linalg.norm(direction)
    pos = center + direction * radius / math.sin(math.radians(fovy / 2)) * 1.15
    forward = center - pos
    forward /= np.linalg.norm(forward)
    x_axis = np.cross(forward, [0.0, 0.0, 1.0])
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(x_axis, forward)
    etree.SubElement(world, "camera", name="preview", mode="fixed", pos=_v(pos), xyaxes=_v(np.concatenate([x_axis, y_axis])),
                     fovy=_f(fovy))


def _hull_volume(vertices: np.ndarray) -> float:
    try:
        return float(trimesh.Trimesh(vertices=vertices, process=False).convex_hull.volume)
    except Exception:  # noqa: BLE001 - a degenerate (flat) sliver has no hull volume
        return 0.0


def _stl_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """Binary STL with a fixed header, so identical geometry gives identical bytes."""
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    record = np.zeros(len(tri), dtype=[("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    record["normal"] = normals
    record["vertices"] = tri
    header = b"benchgen binary STL, metres".ljust(80, b" ")
    return header + np.uint32(len(tri)).tobytes() + record.tobytes()


def _f(x: float, digits: int = 7) -> str:
    """Fixed float formatting: shortest of %g at ``digits`` significant digits, no negative zero."""
    x = float(x)
    if not math.isfinite(x):
        raise CompositionError(f"non-finite number {x} in the scene")
    text = f"{x:.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _v(values) -> str:
    """A vector in metres (or unitless): rounded to 1e-9 so float noise does not show as 5e-21."""
    return " ".join(_f(round(float(x), 9)) for x in values)
