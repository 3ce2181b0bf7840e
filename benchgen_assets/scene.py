"""What a scenario script's ``build(seed, scale)`` returns. Imported inside the sandbox.

Conventions: build123d solids in **millimetres**, placed in **world coordinates**, z up, the
table/ground top at z = 0. The pipeline converts to metres for MJCF and computes masses from
density and volume (``mass_kg`` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

Vec3 = tuple[float, float, float]
JointKind = Literal["fixed", "free", "hinge", "slide"]
Role = Literal["fixture", "object", "target", "link", "obstacle"]


@dataclass
class Part:
    name: str
    solid: Any  # a build123d Solid / Part / Compound, mm, world frame
    role: Role = "object"
    joint: JointKind = "fixed"
    density_kg_m3: float = 700.0
    mass_kg: Optional[float] = None
    parent: Optional[str] = None  # hinge/slide: the part it moves relative to (None: world)
    joint_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    joint_pos_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world frame
    joint_range: Optional[tuple[float, float]] = None  # rad (hinge) or mm (slide)
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    friction: float = 0.8


# -- mechanism extras: named points and closed kinematic loops ---------------------------------

@dataclass
class Site:
    """A named point fixed to a part (mm, world frame at build time): what goals and oracles point at."""

    name: str
    part: str
    pos_mm: Vec3


@dataclass
class JointCoupling:
    """Two hinge/slide parts that move together (meshing gears, rack and pinion):
    q(follower) = ratio × q(leader), in rad or mm; a MuJoCo joint equality. Gears: ratio = -r_leader / r_follower."""

    leader: str  # part names (their one joint each)
    follower: str
    ratio: float


@dataclass
class PinConnection:
    """Closes a kinematic loop (a four-bar linkage's last pin): ``part_a`` and ``part_b`` stay joined
    at ``pos_mm`` (world frame at build time), free to rotate there; a MuJoCo connect equality."""

    part_a: str
    part_b: str
    pos_mm: Vec3


# -- the task: what counts as solved (goal predicates) and a scripted oracle proving it can be --
# Joint values are in the joint's own coordinate, 0 = as built: rad for hinges, mm for slides.

@dataclass
class JointAtLeast:
    part: str  # a hinge/slide part
    value: float


@dataclass
class JointAtMost:
    part: str
    value: float


@dataclass
class SiteInBox:
    """Site ``site`` lies in the box [min_mm, max_mm] around site ``relative_to`` (world axes, mm)."""

    site: str
    relative_to: str
    min_mm: Vec3
    max_mm: Vec3


@dataclass
class PartAtRest:
    part: str
    max_speed_m_s: float = 0.02  # linear speed of the part's centre of mass


Predicate = Union[JointAtLeast, JointAtMost, SiteInBox, PartAtRest]


@dataclass
class DriveJoint:
    """Drive a hinge/slide part to ``target`` (rad or mm) with a position servo over ``duration_s``;
    the servo keeps holding it until the oracle ends."""

    part: str
    target: float
    duration_s: float = 1.0


@dataclass
class CarryPart:
    """Grasp a free part (a mocap weld, orientation kept) and move it through ``waypoints_mm``:
    displacements of the part from its start pose as built (mm, world axes; the path starts wherever the
    part is when grasped and stops at each waypoint), in ``duration_s`` in all;
    let go after the last one unless ``release`` is False."""

    part: str
    waypoints_mm: list[Vec3]
    duration_s: float = 2.0
    release: bool = True


@dataclass
class Settle:
    duration_s: float = 0.5


OracleStep = Union[DriveJoint, CarryPart, Settle]


@dataclass
class Task:
    """What a policy must achieve in this scene. Solved the first moment every goal predicate holds;
    the initial state must not already satisfy the goal, and the oracle must solve it in time."""

    instruction: str  # what a policy is told, e.g. "Insert the peg into the hole."
    goal: list[Predicate]
    oracle: list[OracleStep]
    time_limit_s: float = 10.0


@dataclass
class Scene:
    name: str
    parts: list[Part]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # the drawn family parameters, for the manifest
    task: Optional[Task] = None
    sites: list[Site] = field(default_factory=list)
    couplings: list[JointCoupling] = field(default_factory=list)
    pins: list[PinConnection] = field(default_factory=list)


# -- composing scenes (used by composed scripts: "a drawer with a peg-in-hole on top") ----------
# Names a scene refers to, per record type: prefixing renames them all together.
_NAME_FIELDS = {Part: ("name", "parent"), Site: ("name", "part"), JointCoupling: ("leader", "follower"),
                PinConnection: ("part_a", "part_b"), JointAtLeast: ("part",), JointAtMost: ("part",),
                SiteInBox: ("site", "relative_to"), PartAtRest: ("part",), DriveJoint: ("part",),
                CarryPart: ("part",), Settle: ()}


def _renamed(record: Any, prefix: str) -> Any:
    from dataclasses import replace

    fields = _NAME_FIELDS.get(type(record))
    if fields is None:
        raise TypeError(f"prefixed() does not know which names a {type(record).__name__} refers to (see _NAME_FIELDS)")
    return replace(record, **{f: prefix + getattr(record, f) for f in fields if getattr(record, f) is not None})


def _shifted(p: Vec3, d: Vec3) -> Vec3:
    return (p[0] + d[0], p[1] + d[1], p[2] + d[2])


def scene_bounds(*scenes: Scene) -> tuple[Vec3, Vec3]:
    """The axis-aligned bounding box (mm, world frame) of every part of ``scenes`` as built."""
    boxes = [p.solid.bounding_box() for s in scenes for p in s.parts]
    lo = tuple(min(getattr(b.min, a) for b in boxes) for a in "XYZ")
    hi = tuple(max(getattr(b.max, a) for b in boxes) for a in "XYZ")
    return lo, hi


def translated(scene: Scene, offset_mm: Vec3) -> Scene:
    """A copy of ``scene`` moved by ``offset_mm``: solids, joint anchors, sites and pins move; goal boxes
    (relative to a site), CarryPart waypoints (displacements) and joint values (0 = as built) stay valid."""
    from dataclasses import replace

    return replace(
        scene,
        parts=[replace(p, solid=p.solid.translate(offset_mm), joint_pos_mm=_shifted(p.joint_pos_mm, offset_mm))
               for p in scene.parts],
        sites=[replace(s, pos_mm=_shifted(s.pos_mm, offset_mm)) for s in scene.sites],
        pins=[replace(p, pos_mm=_shifted(p.pos_mm, offset_mm)) for p in scene.pins],
    )


def prefixed(scene: Scene, prefix: str) -> Scene:
    """A copy of ``scene`` whose part and site names (and every reference to them) start with ``prefix``."""
    from dataclasses import replace

    task = scene.task
    if task is not None:
        task = replace(task, goal=[_renamed(g, prefix) for g in task.goal],
                       oracle=[_renamed(s, prefix) for s in task.oracle])
    return replace(scene, name=prefix + scene.name, parts=[_renamed(p, prefix) for p in scene.parts],
                   sites=[_renamed(s, prefix) for s in scene.sites],
                   couplings=[_renamed(c, prefix) for c in scene.couplings],
                   pins=[_renamed(p, prefix) for p in scene.pins], task=task)


def beside(placed: list[Scene], scene: Scene, gap_mm: float = 40.0) -> Scene:
    """``scene`` moved to the +x side of the scenes already ``placed``, ``gap_mm`` clear of their
    bounding box and centred on it in y (hinges and slides sweep within their footprint or along y)."""
    (alo, ahi), (slo, shi) = scene_bounds(*placed), scene_bounds(scene)
    return translated(scene, (ahi[0] + gap_mm - slo[0], (alo[1] + ahi[1] - slo[1] - shi[1]) / 2, 0.0))


def support_top(scene: Scene) -> tuple[Vec3, Vec3]:
    """Bounding box of the fixed part whose top is highest: what another scene can stand on."""
    fixed = [p for p in scene.parts if p.joint == "fixed"]
    if not fixed:
        raise ValueError(f"scene {scene.name!r} has no fixed part to put anything on")
    best = max(fixed, key=lambda p: p.solid.bounding_box().max.Z).solid.bounding_box()
    return (best.min.X, best.min.Y, best.min.Z), (best.max.X, best.max.Y, best.max.Z)


def on_top(support: Scene, scene: Scene, margin_mm: float = 3.0) -> Scene:
    """``scene`` (built on the table, z = 0) moved onto the top face of ``support``'s highest fixed
    part, centred on it; ValueError if its footprint does not fit within ``margin_mm`` of the edges."""
    (flo, fhi), (slo, shi) = support_top(support), scene_bounds(scene)
    room = (fhi[0] - flo[0] - 2 * margin_mm, fhi[1] - flo[1] - 2 * margin_mm)
    need = (shi[0] - slo[0], shi[1] - slo[1])
    if need[0] > room[0] or need[1] > room[1]:
        raise ValueError(f"{scene.name!r} needs {need[0]:.0f} x {need[1]:.0f} mm but the top of {support.name!r} "
                         f"offers {room[0]:.0f} x {room[1]:.0f} mm")
    return translated(scene, ((flo[0] + fhi[0] - slo[0] - shi[0]) / 2, (flo[1] + fhi[1] - slo[1] - shi[1]) / 2, fhi[2]))


def fitted_on_top(support: Scene, make: Any, seed: int, scale: Vec3, min_scale: Vec3 = (0.5, 0.5, 0.5),
                  margin_mm: float = 3.0) -> Scene:
    """``make(seed, scale)`` put ``on_top`` of ``support``; while it does not fit, rebuilt with a smaller
    footprint scale (x and y, never below ``min_scale``: the smallest its family is built at)."""
    sx, sy, sz = scale
    for _ in range(8):
        scene = make(seed, (sx, sy, sz))
        (flo, fhi), (slo, shi) = support_top(support), scene_bounds(scene)
        shrink = min((fhi[0] - flo[0] - 2 * margin_mm) / (shi[0] - slo[0]),
                     (fhi[1] - flo[1] - 2 * margin_mm) / (shi[1] - slo[1]))
        smaller = (max(min_scale[0], sx * shrink * 0.97), max(min_scale[1], sy * shrink * 0.97))
        if shrink >= 1.0 or smaller == (sx, sy):
            break
        sx, sy = smaller
    return on_top(support, scene, margin_mm)


def combine_scenes(name: str, scenes: list[Scene], description: str = "") -> Scene:
    """One scene holding every part, site, coupling and pin of ``scenes`` (already named apart and
    placed without overlap, see ``prefixed``/``translated``). Its task needs every goal predicate
    to hold, runs the oracles one after the other and allows the sum of their time limits."""
    tasks = [s.task for s in scenes if s.task is not None]
    task = None
    if tasks:
        task = Task(instruction=" Then: ".join(t.instruction for t in tasks),
                    goal=[g for t in tasks for g in t.goal], oracle=[o for t in tasks for o in t.oracle],
                    time_limit_s=sum(t.time_limit_s for t in tasks))
    return Scene(name=name, parts=[p for s in scenes for p in s.parts],
                 description=description or " ".join(s.description for s in scenes),
                 parameters={s.name: s.parameters for s in scenes}, task=task,
                 sites=[x for s in scenes for x in s.sites], couplings=[x for s in scenes for x in s.couplings],
                 pins=[x for s in scenes for x in s.pins])
