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
