"""The offline teacher's rule-based judgement: critic review (C.5) and quality score (G).

Both compare a tree against the plan the offline teacher itself would make from the instruction
and the scene report, and simulate the PAL preconditions along the tree's nominal path.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from pydantic import BaseModel

from teacher_assets.bt.pal import PAL_V1

from .instruction_parser import parse_instruction
from .pal_planner import plan_task, steps_of
from .schemas import CriticReply, SceneReport, ScoreReply
from .tree_reading import ReadAction, TreeReading, read_tree


class Finding(BaseModel):
    critical: bool
    issue: str
    question: str


def expected_key_steps(instruction: str, report: Optional[SceneReport]) -> Counter:
    """(primitive, obj) pairs the task needs, navigation left out (where to stand is a free choice)."""
    parsed = parse_instruction(instruction, known_objects=tuple(report.entities) if report else ())
    steps = steps_of(plan_task(parsed, report.object_states if report else {}))
    return Counter((s.primitive, s.obj) for s in steps if s.primitive != "NAVIGATE_TO")


def same_object(a: Optional[str], b: Optional[str]) -> bool:
    """'lamp' and 'desk_lamp' name the same thing (another model may keep the adjective)."""
    if a == b:
        return True
    ta, tb = set((a or "").split("_")), set((b or "").split("_"))
    return bool(ta and tb) and (ta <= tb or tb <= ta)


def missing_steps(expected: Counter, actions: list[ReadAction]) -> list[tuple[str, Optional[str]]]:
    """Expected (primitive, obj) steps the tree never performs, matching objects loosely."""
    done = [(a.action, a.obj) for a in actions if a.action != "NAVIGATE_TO"]
    missing = []
    for (primitive, obj), n in expected.items():
        for _ in range(n):
            hit = next((i for i, (p, o) in enumerate(done) if p == primitive and same_object(o, obj)), None)
            if hit is None:
                missing.append((primitive, obj))
            else:
                done.pop(hit)
    return missing


def simulate_preconditions(actions: list[ReadAction]) -> list[Finding]:
    findings: list[Finding] = []
    held: Optional[str] = None
    at: Optional[str] = None
    for i, a in enumerate(actions, 1):
        where = f"step {i} ({a.action} {a.obj or ''})".strip()
        if not a.is_pal:
            findings.append(Finding(critical=True, issue=f"{where}: {a.action} is not a PAL v1 primitive",
                                    question=f"Which PAL v1 primitive did you mean by {a.action}?"))
            continue
        spec = PAL_V1[a.action]
        if spec.ports and not a.obj:
            findings.append(Finding(critical=True, issue=f"{where}: {a.action} has no obj",
                                    question=f"On which object should {a.action} act?"))
            continue
        if a.action == "NAVIGATE_TO":
            at = a.obj
            continue
        if a.action != "RELEASE" and not same_object(at, a.obj):
            findings.append(Finding(critical=True, issue=f"{where}: no NAVIGATE_TO {a.obj} before {a.action}",
                                    question=f"How does the robot reach {a.obj} for {a.action} without NAVIGATE_TO?"))
        if spec.hand == "empty" and held:
            findings.append(Finding(critical=True, issue=f"{where}: {a.action} needs an empty hand but {held} is held",
                                    question=f"What happens to {held} before {a.action}?"))
        if spec.hand == "holding" and not held:
            findings.append(Finding(critical=True, issue=f"{where}: {a.action} before GRASP: nothing is held",
                                    question=f"Why {a.action} before anything is grasped?"))
        if a.action == "GRASP":
            held = a.obj
        elif a.action.startswith("PLACE_") or a.action == "RELEASE":
            held = None
    return findings


def review_tree(instruction: str, report: Optional[SceneReport], xml: str, iteration: int, max_iterations: int) -> CriticReply:
    parsed = parse_instruction(instruction, known_objects=tuple(report.entities) if report else ())
    reading = read_tree(xml)
    if parsed.infeasible or not parsed.goals:
        why = "; ".join(r for _, r in parsed.infeasible) or f"no PAL mapping for: {', '.join(parsed.unparsed)}"
        return CriticReply(logical_coherence=0, visual_grounding=0, verdict="REJECT",
                           critical_issues=[f"the tree cannot accomplish the instruction: {why}"],
                           questions=["Which PAL primitive performs this task at all?"])
    if not reading.well_formed or not reading.actions:
        issue = f"the draft is not a readable tree: {reading.error}" if not reading.well_formed else "the draft has no actions"
        verdict = "CONCERNS" if iteration < max_iterations else "REJECT"
        return CriticReply(logical_coherence=0, visual_grounding=0, verdict=verdict, critical_issues=[issue],
                           questions=["Can you give a complete tree for the task?"])

    findings = simulate_preconditions(reading.actions)
    for primitive, obj in missing_steps(expected_key_steps(instruction, report), reading.actions):
        findings.append(Finding(critical=True, issue=f"the instruction needs {primitive} {obj or ''}".strip()
                                + " but the tree never does it",
                                question=f"Where in the tree is {primitive} {obj or ''}?".replace(" ?", "?")))
    minor: list[Finding] = []
    if report is not None:
        known = set(report.entities)
        for obj in sorted(o for o in {a.obj for a in reading.actions if a.obj} if not any(same_object(o, k) for k in known)):
            minor.append(Finding(critical=False, issue=f"{obj} is not in the scene report",
                                 question=f"The scene report does not mention {obj}; where is it?"))
        for obj, st in report.object_states.items():
            if st == "open" and any(a.action == "OPEN" and a.obj == obj for a in reading.actions):
                minor.append(Finding(critical=False, issue=f"the report says {obj} is already open",
                                     question=f"Why OPEN {obj} when the scene analysis says it is open?"))
    critical = [f for f in findings if f.critical]
    verdict = "ACCEPT" if not critical else "CONCERNS" if iteration < max_iterations else "REJECT"
    return CriticReply(
        logical_coherence=max(0, 10 - 3 * len(critical)),
        visual_grounding=max(0, 10 - 2 * len(minor)),
        questions=[f.question for f in findings + minor],
        critical_issues=[f.issue for f in critical],
        suggestions=[f"consider: {f.issue}" for f in minor],
        verdict=verdict,
    )


def score_tree(instruction: str, report: Optional[SceneReport], xml: str, conformance_ok: bool,
               conformance_issue_count: int, threshold: int) -> ScoreReply:
    reading: TreeReading = read_tree(xml)
    expected = expected_key_steps(instruction, report)
    covered = sum(expected.values()) - len(missing_steps(expected, reading.actions))
    structure = min(10, 4 + min(3, reading.depth // 2) + (2 if reading.subtree_calls else 0) + (1 if reading.control_nodes >= 3 else 0))
    robustness = min(10, 2 + 2 * min(reading.retries, 2) + 2 * min(reading.fallbacks, 2))
    compliance = 10 if conformance_ok else max(0, 7 - 2 * conformance_issue_count)
    grounding = round(10 * covered / sum(expected.values())) if expected else 0
    if any(f.critical for f in simulate_preconditions(reading.actions)):
        grounding = min(grounding, threshold - 1)  # a nominal path that cannot run does not do the task
    scores = dict(structure=structure, robustness=robustness, compliance=compliance, grounding=grounding)
    weak = [k for k, v in scores.items() if v < threshold]
    return ScoreReply(
        **scores,
        verdict="REJECT" if weak else "ACCEPT",
        rationale=(f"below threshold {threshold}: {', '.join(weak)}" if weak else
                   f"all scores ≥ {threshold}: depth {reading.depth}, {reading.retries} retries, "
                   f"{reading.fallbacks} fallbacks, {reading.subtree_calls} subtree calls, "
                   f"{covered}/{sum(expected.values())} task steps"),
    )
