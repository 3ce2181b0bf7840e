"""Phase 2 — construction: C architect drafts the tree, C.5 critic challenges it (Socratic dialogue)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel

from resources.llm import LLMClient

from .calling import call_agent
from .schemas import AgentCallRecord, ArchitectReply, CriticReply, ErrorTaxonomyRecord, SceneReport, ScoreReply, error_labels

MAX_CRITIC_ITERATIONS = 2


class DialogueTurn(BaseModel):
    speaker: Literal["architect", "critic"]
    iteration: int
    bt_xml: Optional[str] = None  # architect turns
    rationale: str = ""
    responses: list[str] = []
    critique: Optional[CriticReply] = None  # critic turns


class TreeDesign(BaseModel):
    """The outcome of C ⇄ C.5: the draft the critic let through (or why it did not)."""

    bt_xml: str
    accepted: bool
    final_verdict: str
    reason: str
    revisions: int
    dialogue: list[DialogueTurn]
    calls: list[AgentCallRecord]


def draft_tree(client: LLMClient, instruction: str, report: SceneReport, *, previous_xml: Optional[str] = None,
               feedback: Optional[CriticReply] = None) -> tuple[ArchitectReply, AgentCallRecord]:
    payload = {"instruction": instruction, "scene_report": report.model_dump(mode="json")}
    task = "Draft the behavior tree for this task."
    if previous_xml is not None and feedback is not None:
        payload |= {"previous_bt_xml": previous_xml,
                    "critic_feedback": feedback.model_dump(mode="json", include={"questions", "critical_issues", "suggestions"})}
        task = "The critic challenged your tree. Answer each question in `responses` and return the revised tree."
    return call_agent(client, agent="C architect", prompt_name="architect", role="teacher.architect",
                      task=task, payload=payload, schema=ArchitectReply)


def critique_tree(client: LLMClient, instruction: str, report: SceneReport, bt_xml: str, iteration: int,
                  max_iterations: int) -> tuple[CriticReply, AgentCallRecord]:
    return call_agent(
        client, agent="C.5 critic", prompt_name="critic", role="teacher.critic",
        task="Challenge this behavior tree draft.",
        payload={"instruction": instruction, "scene_report": report.model_dump(mode="json"), "bt_xml": bt_xml,
                 "iteration": iteration, "max_iterations": max_iterations},
        schema=CriticReply, verdict_of=lambda r: r.verdict,
    )


def design_tree(client: LLMClient, instruction: str, report: SceneReport, *,
                max_iterations: int = MAX_CRITIC_ITERATIONS, strict: bool = True) -> TreeDesign:
    """Architect drafts; critic reviews up to ``max_iterations`` times; the architect revises on CONCERNS.

    Strict mode: a REJECT, or CONCERNS with critical issues left after the last iteration, stops the
    episode. Non-strict: the last draft goes on with the verdict recorded.
    """
    draft, record = draft_tree(client, instruction, report)
    calls = [record]
    dialogue = [DialogueTurn(speaker="architect", iteration=0, bt_xml=draft.bt_xml, rationale=draft.rationale)]
    review: Optional[CriticReply] = None
    for iteration in range(1, max_iterations + 1):
        review, record = critique_tree(client, instruction, report, draft.bt_xml, iteration, max_iterations)
        calls.append(record)
        dialogue.append(DialogueTurn(speaker="critic", iteration=iteration, critique=review))
        if review.verdict != "CONCERNS" or iteration == max_iterations:
            break
        draft, record = draft_tree(client, instruction, report, previous_xml=draft.bt_xml, feedback=review)
        calls.append(record)
        dialogue.append(DialogueTurn(speaker="architect", iteration=iteration, bt_xml=draft.bt_xml,
                                     rationale=draft.rationale, responses=draft.responses))
    assert review is not None
    blocking = review.verdict == "REJECT" or (review.verdict == "CONCERNS" and review.critical_issues)
    accepted = not (strict and blocking)
    if review.verdict == "ACCEPT":
        reason = "critic accepted the design"
    elif not blocking:
        reason = "critic concerns left without critical issues: " + "; ".join(review.questions[:3])
    else:
        reason = f"critic {review.verdict}: " + "; ".join(review.critical_issues[:4] or review.questions[:2])
    return TreeDesign(bt_xml=draft.bt_xml, accepted=accepted, final_verdict=review.verdict, reason=reason,
                      revisions=sum(t.speaker == "architect" for t in dialogue) - 1, dialogue=dialogue, calls=calls)


def error_taxonomy(design: Optional[TreeDesign], score: Optional[ScoreReply]) -> ErrorTaxonomyRecord:
    """The labels the critic raised over the dialogue, which of them the revisions fixed, and the scorer's."""
    reviews = [t.critique for t in design.dialogue if t.critique is not None] if design else []
    per_review = [error_labels(r.errors) for r in reviews]
    raised = error_labels([e for r in reviews for e in r.errors])
    remaining = per_review[-1] if per_review else []
    return ErrorTaxonomyRecord(critic_reviews=per_review, raised=raised,
                               fixed=[label for label in raised if label not in remaining], remaining=remaining,
                               scorer=error_labels(score.errors) if score else [])
