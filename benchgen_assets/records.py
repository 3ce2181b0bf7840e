"""Pydantic records that cross boundaries in the scenario generator (sandbox → pipeline → dataset).

Owners may add fields and classes; do not rename or remove existing fields (others build on them).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, Field, model_validator

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


# -- the task of a scene: goal predicates, scripted oracle (from benchgen_assets.scene.Task) -----
# Joint values are in the joint's own coordinate, 0 = as built: rad for hinges, mm for slides.

class SiteSpec(BaseModel):
    """A named point on a part (mm, world frame as built); an MJCF ``<site>`` of the same name."""

    name: str
    part: str
    pos_mm: Vec3


class JointCouplingSpec(BaseModel):
    """q(follower) = ratio × q(leader), each in its joint's unit (rad or mm)."""

    leader: str
    follower: str
    ratio: float


class PinSpec(BaseModel):
    """``part_a`` and ``part_b`` stay joined at ``pos_mm`` (world frame as built)."""

    part_a: str
    part_b: str
    pos_mm: Vec3


class _JointBound(BaseModel):
    kind: str  # narrowed to one literal by each subclass
    part: str  # a hinge/slide part
    value: float
    OPERATOR: ClassVar[str]

    def describe(self, unit: str = "") -> str:
        return f"joint of {self.part} {self.OPERATOR} {self.value:g} {unit or 'rad or mm'}"


class JointAtLeastSpec(_JointBound):
    kind: Literal["joint_at_least"] = "joint_at_least"
    OPERATOR: ClassVar[str] = ">="


class JointAtMostSpec(_JointBound):
    kind: Literal["joint_at_most"] = "joint_at_most"
    OPERATOR: ClassVar[str] = "<="


class SiteInBoxSpec(BaseModel):
    kind: Literal["site_in_box"] = "site_in_box"
    site: str
    relative_to: str
    min_mm: Vec3
    max_mm: Vec3

    def describe(self, unit: str = "") -> str:
        box = ", ".join(f"{a} in [{lo:.4g}, {hi:.4g}]" for a, lo, hi in zip("xyz", self.min_mm, self.max_mm))
        return f"site {self.site} relative to site {self.relative_to}: {box} mm"


class PartAtRestSpec(BaseModel):
    kind: Literal["part_at_rest"] = "part_at_rest"
    part: str
    max_speed_m_s: float = 0.02

    def describe(self, unit: str = "") -> str:
        return f"{self.part} at rest (centre of mass speed <= {self.max_speed_m_s:g} m/s)"


PredicateSpec = Annotated[Union[JointAtLeastSpec, JointAtMostSpec, SiteInBoxSpec, PartAtRestSpec],
                          Field(discriminator="kind")]


class DriveJointStep(BaseModel):
    kind: Literal["drive_joint"] = "drive_joint"
    part: str
    target: float
    duration_s: float = 1.0

    def describe(self) -> str:
        return f"drive {self.part} to {self.target:g}"


class CarryPartStep(BaseModel):
    kind: Literal["carry_part"] = "carry_part"
    part: str
    waypoints_mm: list[Vec3]
    duration_s: float = 2.0
    release: bool = True

    def describe(self) -> str:
        end = ", release" if self.release else ""
        return f"carry {self.part} through {len(self.waypoints_mm)} waypoint(s){end}"


class SettleStep(BaseModel):
    kind: Literal["settle"] = "settle"
    duration_s: float = 0.5

    def describe(self) -> str:
        return "settle"


OracleStepSpec = Annotated[Union[DriveJointStep, CarryPartStep, SettleStep], Field(discriminator="kind")]

TASK_SCHEMA_VERSION = 1


class TaskSpec(BaseModel):
    """A scene's task as exported to ``task.json``: solved the first moment every goal predicate holds."""

    schema_version: Literal[1] = TASK_SCHEMA_VERSION
    instruction: str
    goal: list[PredicateSpec]
    oracle: list[OracleStepSpec]
    time_limit_s: float

    def predicate_text(self, joint_units: Optional[dict[str, str]] = None) -> str:
        """The goal as one readable line; ``joint_units`` maps a part to "rad" or "mm"."""
        units = joint_units or {}
        return " AND ".join(p.describe(units.get(getattr(p, "part", ""), "")) for p in self.goal)


class PredicateResult(BaseModel):
    """One goal predicate scored on one state."""

    predicate: str  # readable, e.g. "joint of lever >= 0.4 rad"
    kind: str
    value: float  # joint value (rad / mm), speed (m/s), or for site_in_box the distance outside the box (mm, <= 0 inside)
    threshold: float
    unit: str
    holds: bool
    offset_mm: Optional[Vec3] = None  # site_in_box: the site's offset from ``relative_to``


class TaskResult(BaseModel):
    success: bool  # every predicate holds
    time_s: float = 0.0  # the state's simulation time
    predicates: list[PredicateResult]

    def failing(self) -> list[PredicateResult]:
        return [p for p in self.predicates if not p.holds]


class OracleStepRun(BaseModel):
    name: str  # e.g. "carry peg through 3 waypoint(s), release"
    kind: str
    start_s: float  # simulation time
    end_s: float
    completed: bool  # False: the goal held (or time ran out) before the step finished


class OracleReport(BaseModel):
    """What the scripted oracle did in MuJoCo and whether it reached the goal in time."""

    solved: bool
    time_to_success_s: Optional[float] = None
    time_limit_s: float
    simulated_s: float
    steps: list[OracleStepRun] = Field(default_factory=list)
    final: TaskResult  # the goal scored at the moment of success, or at the time limit
    final_qpos: list[float] = Field(default_factory=list)  # that state (scene.xml's qpos layout), for the preview
    message: str = ""


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
    task: Optional[TaskSpec] = None
    sites: list[SiteSpec] = Field(default_factory=list)
    couplings: list[JointCouplingSpec] = Field(default_factory=list)
    pins: list[PinSpec] = Field(default_factory=list)


class SandboxError(BaseModel):
    """Why a script did not build: the exact text fed back to the coder."""

    kind: Literal["syntax", "forbidden_import", "forbidden_call", "runtime", "timeout", "cpu_limit",
                  "memory_limit", "bad_return", "crashed", "geometry"]
    message: str
    traceback: Optional[str] = None


class StageResult(BaseModel):
    name: Literal["compile", "geometry", "mjcf_compose", "mjcf_schema", "mjcf_compile", "stability", "solvability"]
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
    oracle: Optional[OracleReport] = None  # the solvability stage's oracle run

    def first_failure(self) -> Optional[StageResult]:
        return next((s for s in self.stages if not s.passed), None)


class SandboxLimits(BaseModel):
    """What one sandboxed build may use. Sent to the build server with each job."""

    wall_timeout_s: float = 60.0  # enforced by the server: the job's process group is killed
    cpu_time_s: int = 60  # RLIMIT_CPU
    memory_mb: int = 2048  # address space the script may add on top of the preloaded libraries
    max_file_mb: int = 64  # RLIMIT_FSIZE: the largest file the job may write
    max_processes: int = 32  # RLIMIT_NPROC headroom (the kernel ignores it for root; the audit hook still refuses fork)
    static_check: bool = True  # the AST pre-check; tests switch it off to prove the runtime hooks alone hold


# -- authoring: request → plan → script (added by the generator pipeline) ------------------------

class ScaleLimits(BaseModel):
    """Per-axis (x, y, z) limits of the non-uniform scale a variant may get (seed plan: 0.5–2.0)."""

    min: Vec3 = (0.5, 0.5, 0.5)
    max: Vec3 = (2.0, 2.0, 2.0)

    @model_validator(mode="after")
    def _ordered(self) -> "ScaleLimits":
        for lo, hi in zip(self.min, self.max):
            if not 0 < lo <= hi:
                raise ValueError(f"scale limits need 0 < min <= max per axis, got min={self.min} max={self.max}")
        return self


class VariantSpec(BaseModel):
    """One variant of a scenario: the seed and scale vector ``build(seed, scale)`` gets."""

    variant_id: str  # "v00", "v01", …
    seed: int
    scale: Vec3


class GenerationRequest(BaseModel):
    """What the user asked for one scenario (saved by the CLI / UI per partition)."""

    scenario_id: str
    tier: Optional[int] = Field(None, ge=1, le=3)
    family: Optional[str] = None
    prompt: Optional[str] = None  # free text, e.g. "10 levers, tier 2"
    seed: int = 0  # base seed: variant seeds and scale vectors are drawn from it
    variants: int = Field(3, ge=1, le=64)


class ScenarioPlan(BaseModel):
    """The Planner's design of a scenario (editable by a human before the coder runs)."""

    title: str
    family: Optional[str] = None  # the parametric family the coder should follow, if any
    tier: int = Field(ge=1, le=3)
    summary: str
    geometric_requirements: list[str]
    learning_objectives: list[str]
    self_verification: list[str]  # how the scene proves itself solvable/stable (checks to pass)
    scale_limits: ScaleLimits = Field(default_factory=ScaleLimits)


class CoderReply(BaseModel):
    """The Coder's answer: a complete build123d module defining ``build(seed, scale)``."""

    code: str
    notes: str = ""


class ReviewVerdict(BaseModel):
    """The Internal Reviewer's verdict on a script, before it is run."""

    decision: Literal["approve", "revise"]
    issues: list[str] = Field(default_factory=list)
    summary: str = ""


class AgentStep(BaseModel):
    """One agent call as sent and answered (what an RL trace needs)."""

    role: str
    prompt_version: str
    prompt_hash: str
    messages: list[dict[str, Any]]
    reply: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Optional[float] = None
    latency_s: float = 0.0
    cache_hit: bool = False


class CoderAttempt(BaseModel):
    """One round of Coder ⇄ Internal Reviewer ⇄ validator; every round is kept."""

    attempt: int  # 1-based
    source: Literal["coder", "override"]
    code: str
    notes: str = ""
    coder: Optional[AgentStep] = None
    review: Optional[ReviewVerdict] = None
    reviewer: Optional[AgentStep] = None
    validation: Optional[ValidationReport] = None  # the probe variant; None if the review sent it back
    feedback: Optional[str] = None  # exactly what went back to the coder after this attempt
    seconds: float = 0.0

    @property
    def accepted(self) -> bool:
        return self.validation is not None and self.validation.passed


class ScenarioScript(BaseModel):
    """Result of the generation loop: the script to run on every variant, and how it came about."""

    scenario_id: str
    code: str
    accepted: bool  # the probe variant passed validation
    source: Literal["coder", "override"]
    attempts: list[CoderAttempt]
    code_sha256: str


class ScenarioManifest(BaseModel):
    """One row of the benchmark manifest: a variant of a scenario and where its files are."""

    scenario_id: str
    variant_id: str
    name: str
    title: str
    tier: int
    family: Optional[str]
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int
    scale: Vec3
    status: Literal["valid", "rejected"]
    dir: str  # datasets/benchmarks/<scenario>/<variant> or datasets/benchmarks/staging/…
    mjcf_path: Optional[str] = None
    stl_paths: list[str] = Field(default_factory=list)
    validation_path: str
    preview_path: Optional[str] = None
    mjcf_sha256: Optional[str] = None
    stl_sha256: list[str] = Field(default_factory=list)
    script_sha256: str
    # the task (task.json next to scene.xml) and what the oracle proved
    instruction: Optional[str] = None
    predicate: Optional[str] = None  # the goal, readable: predicates joined by AND
    success_metric: Optional[str] = None  # the oracle's final value per predicate, in the same order ("; ")
    oracle_time_s: Optional[float] = None  # simulated time the oracle needed to reach the goal
    time_limit_s: Optional[float] = None


class VariantOutcome(BaseModel):
    manifest: ScenarioManifest
    report: ValidationReport


class ScenarioValidation(BaseModel):
    """Every variant of one scenario, validated and exported (valid) or staged (rejected)."""

    scenario_id: str
    variants: list[VariantOutcome]

    @property
    def valid(self) -> int:
        return sum(v.report.passed for v in self.variants)

    @property
    def yield_ratio(self) -> float:
        return self.valid / len(self.variants) if self.variants else 0.0
