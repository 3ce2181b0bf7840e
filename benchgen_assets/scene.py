"""What a scenario script's ``build(seed, scale)`` returns. Imported inside the sandbox.

Conventions: build123d solids in **millimetres**, placed in **world coordinates**, z up, the
table/ground top at z = 0. The pipeline converts to metres for MJCF and computes masses from
density and volume (``mass_kg`` overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional

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


@dataclass
class Scene:
    name: str
    parts: list[Part]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)  # the drawn family parameters, for the manifest
