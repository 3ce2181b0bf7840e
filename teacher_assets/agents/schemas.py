"""Reply schema of every agent, and the audit record of one agent call."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, Field

from teacher_assets.bt.transforms import SubtreeMap

Score = Field(ge=0, le=10)


class FeasibilityReply(BaseModel):
    feasible: bool
    reason: str
    required_primitives: list[str] = []
    blocking_verbs: list[str] = []
    reason_codes: list[str] = []  # "unsupported_relation:near", "unsupported_verb:knock_over" … (vocabulary.py)
    notes: list[str] = []  # interpretations a feasible plan rests on


# The Embodied Agent Interface (Li et al., NeurIPS 2024) error taxonomy for action sequences, as it
# applies to a PAL tree: grammar errors (parse, hallucinated action / object, wrong arity), runtime
# errors (wrong order, missing step, extra step, affordance violation) and goal errors (wrong
# relation, wrong object, a task PAL cannot express at all).
ErrorLabel = Literal["parse_error", "hallucinated_action", "arity_error", "hallucinated_object", "wrong_order",
                     "missing_step", "extra_step", "affordance_violation", "wrong_relation", "wrong_object",
                     "infeasible_task"]
ERROR_LABELS: tuple[str, ...] = ErrorLabel.__args__


class TreeError(BaseModel):
    """One problem of a tree, labelled with the taxonomy."""

    label: ErrorLabel
    detail: str
    step: Optional[int] = None  # 1-based position on the tree's nominal path, when it is one step
    critical: bool = True


def error_labels(errors: list[TreeError]) -> list[str]:
    """The distinct labels, in taxonomy order."""
    raised = {e.label for e in errors}
    return [label for label in ERROR_LABELS if label in raised]


class SceneReport(BaseModel):
    """Agent B's situation report: the seed's four sections plus what it is based on."""

    scene_description: str
    entities: list[str] = []
    dynamic_progression: str
    favorable_conditions: list[str] = []
    unfavorable_conditions: list[str] = []
    predicted_failures: list[str] = []
    planner_hints: list[str] = []
    object_states: dict[str, str] = {}
    evidence: str


class ArchitectReply(BaseModel):
    bt_xml: str
    rationale: str
    responses: list[str] = []  # answers to the critic's questions on a revision


CriticVerdict = Literal["ACCEPT", "CONCERNS", "REJECT"]


class CriticReply(BaseModel):
    logical_coherence: int = Score
    visual_grounding: int = Score
    questions: list[str] = []
    critical_issues: list[str] = []
    suggestions: list[str] = []
    errors: list[TreeError] = []  # every problem, labelled (critical ones also in critical_issues)
    verdict: CriticVerdict


class TreeEditReply(BaseModel):
    """Robustness agent (D): the hardened tree."""

    bt_xml: str
    changes: list[str] = []


class SubtreeReply(BaseModel):
    bt_xml: str
    subtree_map: SubtreeMap = SubtreeMap()  # subtree definitions and where each replaced what
    changes: list[str] = []


class RepairReply(BaseModel):
    bt_xml: str
    fixes: list[str] = []


class ScoreReply(BaseModel):
    structure: int = Score
    robustness: int = Score
    compliance: int = Score
    grounding: int = Score
    verdict: Literal["ACCEPT", "REJECT"]
    rationale: str
    errors: list[TreeError] = []  # what keeps the tree from doing the task, labelled


class ErrorTaxonomyRecord(BaseModel):
    """An episode's error labels in its audit log and dataset row."""

    critic_reviews: list[list[str]] = []  # labels of each C.5 review, in dialogue order
    raised: list[str] = []  # every label the critic raised
    fixed: list[str] = []  # raised, and gone from the critic's last review (the architect's revision fixed it)
    remaining: list[str] = []  # in the last review
    scorer: list[str] = []  # labels the G scorer found in the final tree


class AgentCallRecord(BaseModel):
    """One line of an episode's audit log."""

    agent: str  # "A feasibility", "C.5 critic" …
    role: str
    prompt_version: str
    input_digest: str  # sha256 of the structured input (and images) the agent was given
    output: dict
    verdict: Optional[str] = None
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Optional[float] = None
    cache_hit: bool = False
    latency_s: float = 0.0
