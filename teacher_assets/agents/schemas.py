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
