"""Turn a built ``Scene`` into STL files and ``BuiltPart`` records (runs in the job process).

Imported only by the build server (build123d at module level is fine there).
The STL is written here rather than with build123d's exporter so the bytes depend only on the
geometry: a fixed header, our own serial tessellation at a fixed tolerance, no timestamps.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import trimesh
from build123d import CenterOf, Shape
from OCP.BRep import BRep_Tool
from OCP.BRepAlgoAPI import BRepAlgoAPI_Check
from OCP.BRepCheck import BRepCheck_Analyzer
from OCP.BRepMesh import BRepMesh_IncrementalMesh
from OCP.BRepTools import BRepTools
from OCP.TopAbs import TopAbs_EDGE, TopAbs_FACE, TopAbs_REVERSED, TopAbs_SHELL, TopAbs_SOLID
from OCP.TopExp import TopExp_Explorer
from OCP.TopLoc import TopLoc_Location
from OCP.TopoDS import TopoDS

from benchgen_assets.records import (BuiltPart, CarryPartStep, DriveJointStep, GeometryReport, JointAtLeastSpec,
                                     JointAtMostSpec, JointCouplingSpec, PartAtRestSpec, PinSpec, SettleStep, SiteInBoxSpec,
                                     SiteSpec, TaskSpec)
from benchgen_assets.scene import (CarryPart, DriveJoint, JointAtLeast, JointAtMost, JointCoupling, Part, PartAtRest,
                                   PinConnection, Scene, Settle, Site, SiteInBox, Task)

LINEAR_DEFLECTION_MM = 0.1
ANGULAR_DEFLECTION_RAD = 0.25
STL_HEADER = b"benchgen binary STL, millimetres, world frame".ljust(80, b" ")
_STL_DTYPE = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])


class BadReturn(ValueError):
    """``build()`` returned something that is not a usable Scene."""


def check_scene(scene) -> None:

    if not isinstance(scene, Scene):
        raise BadReturn(f"build() must return benchgen_assets.scene.Scene, got {type(scene).__name__}")
    if not isinstance(scene.parts, list) or not scene.parts:
        raise BadReturn("Scene.parts must be a non-empty list of Part")
    names: set[str] = set()
    all_names = {getattr(p, "name", None) for p in scene.parts}
    for i, part in enumerate(scene.parts):
        if not isinstance(part, Part):
            raise BadReturn(f"Scene.parts[{i}] is {type(part).__name__}, not Part")
        if not isinstance(part.name, str) or not part.name:
            raise BadReturn(f"Scene.parts[{i}] needs a non-empty string name")
        if part.name in names:
            raise BadReturn(f"two parts are named {part.name!r}; part names must be unique")
        names.add(part.name)
        if not isinstance(part.solid, Shape) or part.solid.wrapped is None:
            raise BadReturn(f"part {part.name!r}: solid must be a build123d Shape, got {type(part.solid).__name__}")
        if not part.solid.solids():
            raise BadReturn(f"part {part.name!r}: the shape contains no solid (a face or wire cannot be simulated)")
        if part.joint not in ("fixed", "free", "hinge", "slide"):
            raise BadReturn(f"part {part.name!r}: unknown joint {part.joint!r}")
        if part.parent is not None and part.parent not in all_names:
            raise BadReturn(f"part {part.name!r}: parent {part.parent!r} is not a part of the scene")
        if not (part.density_kg_m3 > 0) or (part.mass_kg is not None and not part.mass_kg > 0):
            raise BadReturn(f"part {part.name!r}: density and mass must be positive")
    check_mechanism(scene)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_vec3(v) -> bool:
    return isinstance(v, (tuple, list)) and len(v) == 3 and all(_is_number(x) for x in v)


def _is_list_of(value, kind) -> bool:
    return isinstance(value, list) and all(isinstance(x, kind) for x in value)


def check_mechanism(scene: Scene) -> None:
    """Sites, couplings, pins and the task must refer to parts and sites that exist, with usable joints."""
    joints = {p.name: p.joint for p in scene.parts}

    def part_ref(where: str, name, allowed: tuple[str, ...] | None = None) -> None:
        if name not in joints:
            raise BadReturn(f"{where}: part {name!r} is not a part of the scene (parts: {', '.join(joints)})")
        if allowed and joints[name] not in allowed:
            raise BadReturn(f"{where}: part {name!r} has joint {joints[name]!r}; it needs a {' or '.join(allowed)} joint")

    def positive(where: str, value) -> None:
        if not (_is_number(value) and value > 0):
            raise BadReturn(f"{where} must be a positive number of seconds, got {value!r}")

    for field_name, kind in (("sites", Site), ("couplings", JointCoupling), ("pins", PinConnection)):
        if not _is_list_of(getattr(scene, field_name), kind):
            raise BadReturn(f"Scene.{field_name} must be a list of {kind.__name__}")
    sites: set[str] = set()
    for site in scene.sites:
        if not isinstance(site.name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", site.name):
            raise BadReturn(f"site name {site.name!r} must be a non-empty identifier (letters, digits, _ or -)")
        if site.name in sites:
            raise BadReturn(f"two sites are named {site.name!r}; site names must be unique")
        sites.add(site.name)
        part_ref(f"site {site.name!r}", site.part)
        if not _is_vec3(site.pos_mm):
            raise BadReturn(f"site {site.name!r}: pos_mm must be three finite numbers (mm, world frame), got {site.pos_mm!r}")
    for c in scene.couplings:
        where = f"coupling {c.leader!r} -> {c.follower!r}"
        part_ref(where, c.leader, ("hinge", "slide"))
        part_ref(where, c.follower, ("hinge", "slide"))
        if c.leader == c.follower:
            raise BadReturn(f"{where}: a part cannot be coupled to itself")
        if not (_is_number(c.ratio) and c.ratio != 0):
            raise BadReturn(f"{where}: ratio must be a finite non-zero number, got {c.ratio!r}")
    for pin in scene.pins:
        where = f"pin {pin.part_a!r} - {pin.part_b!r}"
        part_ref(where, pin.part_a)
        part_ref(where, pin.part_b)
        if pin.part_a == pin.part_b:
            raise BadReturn(f"{where}: a pin joins two different parts")
        if not _is_vec3(pin.pos_mm):
            raise BadReturn(f"{where}: pos_mm must be three finite numbers (mm, world frame), got {pin.pos_mm!r}")

    task = scene.task
    if task is None:
        return  # the solvability stage reports a missing task; the scene itself can still be built
    if not isinstance(task, Task):
        raise BadReturn(f"Scene.task must be a benchgen_assets.scene.Task, got {type(task).__name__}")
    if not isinstance(task.instruction, str) or not task.instruction.strip():
        raise BadReturn("Task.instruction must be a non-empty sentence telling the policy what to do")
    positive("Task.time_limit_s", task.time_limit_s)
    if not isinstance(task.goal, list) or not task.goal:
        raise BadReturn("Task.goal must be a non-empty list of predicates (JointAtLeast, JointAtMost, SiteInBox, PartAtRest)")
    for i, pred in enumerate(task.goal):
        where = f"Task.goal[{i}] ({type(pred).__name__})"
        if isinstance(pred, (JointAtLeast, JointAtMost)):
            part_ref(where, pred.part, ("hinge", "slide"))
            if not _is_number(pred.value):
                raise BadReturn(f"{where}: value must be a finite number (rad for a hinge, mm for a slide)")
        elif isinstance(pred, SiteInBox):
            for name in (pred.site, pred.relative_to):
                if name not in sites:
                    raise BadReturn(f"{where}: site {name!r} is not in Scene.sites (sites: {', '.join(sorted(sites)) or 'none'})")
            if not (_is_vec3(pred.min_mm) and _is_vec3(pred.max_mm)):
                raise BadReturn(f"{where}: min_mm and max_mm must be three finite numbers each (mm)")
            if any(lo > hi for lo, hi in zip(pred.min_mm, pred.max_mm)):
                raise BadReturn(f"{where}: min_mm {tuple(pred.min_mm)} must not exceed max_mm {tuple(pred.max_mm)} on any axis")
        elif isinstance(pred, PartAtRest):
            part_ref(where, pred.part)
            if not (_is_number(pred.max_speed_m_s) and pred.max_speed_m_s > 0):
                raise BadReturn(f"{where}: max_speed_m_s must be a positive number")
        else:
            raise BadReturn(f"Task.goal[{i}] is {type(pred).__name__}; use JointAtLeast, JointAtMost, SiteInBox or PartAtRest")
    if not isinstance(task.oracle, list) or not task.oracle:
        raise BadReturn("Task.oracle must be a non-empty list of steps (DriveJoint, CarryPart, Settle) that solves the task")
    for i, step in enumerate(task.oracle):
        where = f"Task.oracle[{i}] ({type(step).__name__})"
        if not isinstance(step, (DriveJoint, CarryPart, Settle)):
            raise BadReturn(f"Task.oracle[{i}] is {type(step).__name__}; use DriveJoint, CarryPart or Settle")
        positive(f"{where}: duration_s", step.duration_s)
        if isinstance(step, DriveJoint):
            part_ref(where, step.part, ("hinge", "slide"))
            if not _is_number(step.target):
                raise BadReturn(f"{where}: target must be a finite number (rad for a hinge, mm for a slide)")
            limits = next(p.joint_range for p in scene.parts if p.name == step.part)
            if limits is not None and not min(limits) <= step.target <= max(limits):
                raise BadReturn(f"{where}: target {step.target:g} is outside the joint_range {tuple(limits)} of {step.part!r}")
        elif isinstance(step, CarryPart):
            part_ref(where, step.part, ("free",))
            if not isinstance(step.waypoints_mm, list) or not step.waypoints_mm:
                raise BadReturn(f"{where}: waypoints_mm must be a non-empty list of (x, y, z) displacements in mm")
            if not all(_is_vec3(w) for w in step.waypoints_mm):
                raise BadReturn(f"{where}: every waypoint must be three finite numbers (mm)")
            if not isinstance(step.release, bool):
                raise BadReturn(f"{where}: release must be True or False")


_PREDICATE_SPECS = {JointAtLeast: JointAtLeastSpec, JointAtMost: JointAtMostSpec, PartAtRest: PartAtRestSpec}
_STEP_SPECS = {DriveJoint: DriveJointStep, Settle: SettleStep}


def _predicate_spec(pred):
    if isinstance(pred, SiteInBox):
        return SiteInBoxSpec(site=pred.site, relative_to=pred.relative_to, min_mm=_vec(pred.min_mm), max_mm=_vec(pred.max_mm))
    return _PREDICATE_SPECS[type(pred)](**{k: v for k, v in vars(pred).items()})


def _step_spec(step):
    if isinstance(step, CarryPart):
        return CarryPartStep(part=step.part, waypoints_mm=[_vec(w) for w in step.waypoints_mm],
                             duration_s=step.duration_s, release=step.release)
    return _STEP_SPECS[type(step)](**{k: v for k, v in vars(step).items()})


def mechanism_records(scene: Scene) -> dict:
    """The checked scene's task, sites, couplings and pins as BuildOutput fields."""
    task = scene.task
    return {
        "task": None if task is None else TaskSpec(
            instruction=task.instruction.strip(), goal=[_predicate_spec(p) for p in task.goal],
            oracle=[_step_spec(s) for s in task.oracle], time_limit_s=task.time_limit_s),
        "sites": [SiteSpec(name=s.name, part=s.part, pos_mm=_vec(s.pos_mm)) for s in scene.sites],
        "couplings": [JointCouplingSpec(leader=c.leader, follower=c.follower, ratio=c.ratio) for c in scene.couplings],
        "pins": [PinSpec(part_a=p.part_a, part_b=p.part_b, pos_mm=_vec(p.pos_mm)) for p in scene.pins],
    }


def safe_file_stem(name: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or "part"
    candidate, i = stem, 2
    while candidate in taken:
        candidate, i = f"{stem}_{i}", i + 1
    taken.add(candidate)
    return candidate


def triangulate(shape) -> tuple[np.ndarray, np.ndarray]:
    """Serial, fixed-tolerance mesh of every face → (vertices float64 [n,3], faces int [m,3])."""

    BRepTools.Clean_s(shape)  # drop any coarser mesh the script made
    BRepMesh_IncrementalMesh(shape, LINEAR_DEFLECTION_MM, False, ANGULAR_DEFLECTION_RAD, False)
    vertices, faces, offset = [], [], 0
    explorer = TopExp_Explorer(shape, TopAbs_FACE)
    while explorer.More():
        face = TopoDS.Face(explorer.Current())
        loc = TopLoc_Location()
        poly = BRep_Tool.Triangulation_s(face, loc)
        if poly is not None:
            trsf = loc.Transformation()
            for i in range(1, poly.NbNodes() + 1):
                p = poly.Node(i).Transformed(trsf)
                vertices.append((p.X(), p.Y(), p.Z()))
            reverse = face.Orientation() == TopAbs_REVERSED
            for tri in poly.Triangles():
                a, b, c = (tri.Value(k) + offset - 1 for k in (1, 2, 3))
                faces.append((a, c, b) if reverse else (a, b, c))
            offset += poly.NbNodes()
        explorer.Next()
    return np.asarray(vertices, dtype=np.float64).reshape(-1, 3), np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def stl_bytes(mesh) -> bytes:
    tris = mesh.vertices[mesh.faces].astype("<f4")
    records = np.zeros(len(tris), dtype=_STL_DTYPE)
    records["normal"] = mesh.face_normals.astype("<f4")
    records["vertices"] = tris
    return STL_HEADER + np.uint32(len(tris)).astype("<u4").tobytes() + records.tobytes()


def edge_use_problems(shape) -> list[str]:
    """Manifold check on the B-rep: every (non-degenerate) edge must bound exactly two face sides."""

    problems = []
    if not TopExp_Explorer(shape, TopAbs_SOLID).More():
        problems.append("the part has no closed solid")
    shells = TopExp_Explorer(shape, TopAbs_SHELL)
    while shells.More():
        # hash() of a TopoDS shape ignores orientation; IsSame() tells hash collisions apart
        uses: dict[int, list[list]] = {}
        face_explorer = TopExp_Explorer(shells.Current(), TopAbs_FACE)
        while face_explorer.More():
            edge_explorer = TopExp_Explorer(face_explorer.Current(), TopAbs_EDGE)
            while edge_explorer.More():
                edge = TopoDS.Edge(edge_explorer.Current())
                if not BRep_Tool.Degenerated_s(edge):
                    bucket = uses.setdefault(hash(edge), [])
                    entry = next((e for e in bucket if e[0].IsSame(edge)), None)
                    if entry is None:
                        bucket.append([edge, 1])
                    else:
                        entry[1] += 1
                edge_explorer.Next()
            face_explorer.Next()
        bad = sum(1 for bucket in uses.values() for _edge, count in bucket if count != 2)
        if bad:
            problems.append(f"{bad} edge(s) not shared by exactly two faces (open or non-manifold shell)")
        shells.Next()
    return problems


def geometry_report(solid, mesh) -> GeometryReport:

    issues: list[str] = []
    brep_valid = BRepCheck_Analyzer(solid.wrapped).IsValid()
    if not brep_valid:
        issues.append("OCCT BRepCheck_Analyzer: the B-rep is invalid")
    manifold_problems = edge_use_problems(solid.wrapped)
    issues += manifold_problems
    # BRepAlgoAPI_Check with the self-interference test also catches overlapping solids in a compound
    self_intersecting = brep_valid and not BRepAlgoAPI_Check(solid.wrapped, True, True).IsValid()
    if self_intersecting:
        issues.append("self-intersection: faces or solids of the part interfere with each other")
    if not mesh.is_watertight:
        issues.append("exported mesh is not watertight")
    if not mesh.is_winding_consistent:
        issues.append("exported mesh has inconsistent triangle winding")
    elif mesh.volume <= 0:
        issues.append("exported mesh is inside out (negative volume)")
    return GeometryReport(brep_valid=brep_valid, manifold=not manifold_problems, watertight=bool(mesh.is_watertight),
                          winding_consistent=bool(mesh.is_winding_consistent) and mesh.volume > 0,
                          self_intersecting=self_intersecting, issues=issues)


def _vec(v) -> tuple[float, float, float]:
    x, y, z = (v.X, v.Y, v.Z) if hasattr(v, "X") else v
    return (round(float(x), 6), round(float(y), 6), round(float(z), 6))


def export_part(part: Part, stem: str, out_dir: Path) -> BuiltPart:

    solid = part.solid
    vertices, faces = triangulate(solid.wrapped)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=True)  # merges face-border duplicates
    # collapsed triangles at degenerate edges (sphere poles, cone apexes) would open the mesh
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    data = stl_bytes(mesh)
    file_name = f"{stem}.stl"
    (out_dir / file_name).write_bytes(data)
    volume = float(solid.volume)
    bbox = solid.bounding_box(optimal=True)
    mass = part.mass_kg if part.mass_kg is not None else part.density_kg_m3 * volume * 1e-9
    hull_volume = float(mesh.convex_hull.volume) if len(mesh.vertices) >= 4 else 0.0
    if not all(math.isfinite(x) for x in (volume, mass, hull_volume)):
        raise BadReturn(f"part {part.name!r}: non-finite volume or mass")
    return BuiltPart(
        name=part.name, role=str(part.role), joint=part.joint, parent=part.parent,
        joint_axis=_vec(part.joint_axis), joint_pos_mm=_vec(part.joint_pos_mm),
        joint_range=tuple(float(x) for x in part.joint_range) if part.joint_range is not None else None,
        density_kg_m3=float(part.density_kg_m3), mass_kg=float(mass), volume_mm3=volume,
        bbox_min_mm=_vec(bbox.min), bbox_max_mm=_vec(bbox.max),
        center_of_mass_mm=_vec(solid.center(CenterOf.MASS)), convex_hull_volume_mm3=hull_volume,
        rgba=tuple(float(x) for x in part.rgba), friction=float(part.friction),
        stl_file=file_name, stl_sha256=hashlib.sha256(data).hexdigest(),
        geometry=geometry_report(solid, mesh),
    )
