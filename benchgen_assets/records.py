"""Pydantic records that cross boundaries in the scenario generator (sandbox → pipeline → dataset).

Owners may add fields and classes; do not rename or remove existing fields (others build on them).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, Field

Vec3 = tuple[float, float, float]


class GeometryReport(BaseModel):
    """Validation 2: per part, from OCCT (in the sandbox) and the exported STL."""

    brep_valid: bool
    manifold: bool  # closed shell(s), every edge shared by exactly two faces
    watertight: bool  # exported STL
    winding_consistent: bool
    self_intersecting: bool
    issues: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.brep_valid and self.manifold and self.watertight and self.winding_consistent and not self.self_intersecting


class BuiltPart(BaseModel):
    name: str
    role: str
    joint: Literal["fixed", "free", "hinge", "slide"]
    parent: Optional[str] = None
    joint_axis: Vec3 = (0.0, 0.0, 1.0)
    joint_pos_mm: Vec3 = (0.0, 0.0, 0.0)
    joint_range: Optional[tuple[float, float]] = None
    density_kg_m3: float
    mass_kg: float  # from density × volume unless the script fixed it
    volume_mm3: float
    bbox_min_mm: Vec3
    bbox_max_mm: Vec3
    center_of_mass_mm: Vec3
    convex_hull_volume_mm3: float  # volume/hull ratio < ~0.97: non-convex, needs decomposition
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    friction: float = 0.8
    stl_file: str  # file name inside BuildOutput.out_dir; binary STL, millimetres, world frame
    stl_sha256: str
    geometry: GeometryReport


class BuildOutput(BaseModel):
    """Result of running ``build(seed, scale)`` in the sandbox and exporting its parts."""

    scene_name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int
    scale: Vec3
    out_dir: str
    parts: list[BuiltPart]
    build_s: float = 0.0
    export_s: float = 0.0


class SandboxError(BaseModel):
    """Why a script did not build: the exact text fed back to the coder."""

    kind: Literal["syntax", "forbidden_import", "forbidden_call", "runtime", "timeout", "cpu_limit",
                  "memory_limit", "bad_return", "crashed", "geometry"]
    message: str
    traceback: Optional[str] = None


class StageResult(BaseModel):
    name: Literal["compile", "geometry", "mjcf_schema", "mjcf_compile", "stability"]
    passed: bool
    message: str = ""
    seconds: float = 0.0


class ValidationReport(BaseModel):
    """Everything the strict validator found for one variant (seed × scale)."""

    scenario_id: str
    variant_id: str
    seed: int
    scale: Vec3
    passed: bool
    stages: list[StageResult] = Field(default_factory=list)
    max_velocity: Optional[float] = None  # m/s or rad/s, over 1 s of simulation
    max_penetration_m: Optional[float] = None
    warnings: list[str] = Field(default_factory=list)
    error: Optional[SandboxError] = None
    timings_s: dict[str, float] = Field(default_factory=dict)

    def first_failure(self) -> Optional[StageResult]:
        return next((s for s in self.stages if not s.passed), None)
