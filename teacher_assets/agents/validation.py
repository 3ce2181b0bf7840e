"""Phase 4 — validation: F conformance & schema (with the LLMRepairer) and G scorer."""

from __future__ import annotations

from pydantic import BaseModel

from resources.llm import LLMClient

from .calling import call_agent, input_digest
from .schemas import AgentCallRecord, RepairReply, SceneReport, ScoreReply

MAX_REPAIRS = 2
SCORE_THRESHOLD = 6


class TreeIssue(BaseModel):
    code: str
    message: str
    path: str = ""


def tree_issues(bt_xml: str) -> tuple[str, list[TreeIssue]]:
    """(canonical xml, issues): parse, canonical v4 form, conformance, then a real BT.CPP load."""
    from teacher_assets.bt.btcpp import load_in_btcpp
    from teacher_assets.bt.conformance import check_conformance
    from teacher_assets.bt.model import BTParseError, parse_bt_xml, to_bt_xml

    try:
        canonical = to_bt_xml(parse_bt_xml(bt_xml))
    except BTParseError as exc:
        return bt_xml, [TreeIssue(code=exc.code, message=exc.message)]
    report = check_conformance(canonical)
    issues = [TreeIssue(**i.model_dump()) for i in report.issues]
    if not issues:
        loaded = load_in_btcpp(canonical)
        if not loaded.ok:
            issues.append(TreeIssue(code="btcpp_load", message=loaded.error))
    return canonical, issues


class ConformanceOutcome(BaseModel):
    ok: bool
    bt_xml: str  # canonical, with deterministic node ids when ok
    issues_found: list[TreeIssue]  # before any repair
    remaining_issues: list[TreeIssue]
    repairs: list[RepairReply]
    calls: list[AgentCallRecord]

    @property
    def repaired(self) -> bool:
        return self.ok and bool(self.repairs)


def repair_call(client: LLMClient, bt_xml: str, issues: list[TreeIssue],
                earlier: list[RepairReply]) -> tuple[RepairReply, AgentCallRecord]:
    payload = {"bt_xml": bt_xml, "issues": [i.model_dump() for i in issues], "attempt": len(earlier) + 1}
    task = "This behavior tree failed its checks. Repair it."
    if earlier:  # a repeated identical request would get the identical (wrong) answer back
        payload["earlier_fixes_that_did_not_work"] = [f for r in earlier for f in r.fixes]
        task = "Your previous repair did not make the tree pass its checks. These issues remain; repair them."
    return call_agent(client, agent="F LLMRepairer", prompt_name="repairer", role="teacher.repairer",
                      task=task, payload=payload, schema=RepairReply)


def enforce_conformance(client: LLMClient, bt_xml: str, *, max_repairs: int = MAX_REPAIRS) -> ConformanceOutcome:
    """F: check; on failure hand the exact issues to the repairer (up to ``max_repairs`` times);
    when clean, assign node ids ``node_01…`` deterministically. Still invalid → not ok (REJECT)."""
    from teacher_assets.bt.transforms import assign_node_ids

    xml, issues = tree_issues(bt_xml)
    found = issues
    repairs: list[RepairReply] = []
    calls: list[AgentCallRecord] = []
    while issues and len(repairs) < max_repairs:
        reply, record = repair_call(client, xml, issues, repairs)
        repairs.append(reply)
        xml, issues = tree_issues(reply.bt_xml)
        record.verdict = "FIXED" if not issues else "STILL_INVALID"
        calls.append(record)
    if not issues:
        xml, issues = tree_issues(assign_node_ids(xml))
    verdict = "REJECT" if issues else "REPAIRED" if repairs else "PASS"
    # F itself is rules, not a model: its line in the audit log has no tokens.
    calls.insert(0, AgentCallRecord(
        agent="F conformance", role="teacher.conformance", prompt_version="rules", model="deterministic",
        input_digest=input_digest({"bt_xml": bt_xml}), verdict=verdict,
        output={"issues_found": [i.model_dump() for i in found], "remaining_issues": [i.model_dump() for i in issues],
                "repairs": len(repairs)}))
    return ConformanceOutcome(ok=not issues, bt_xml=xml, issues_found=found, remaining_issues=issues,
                              repairs=repairs, calls=calls)


class ScoreOutcome(BaseModel):
    score: ScoreReply
    accepted: bool
    note: str = ""
    calls: list[AgentCallRecord]


def _verdict_for(score: ScoreReply, threshold: int) -> str:
    return "ACCEPT" if min(score.structure, score.robustness, score.compliance, score.grounding) >= threshold else "REJECT"


def judge_tree(client: LLMClient, instruction: str, report: SceneReport, bt_xml: str, conformance_issues: list[TreeIssue],
               *, threshold: int = SCORE_THRESHOLD) -> ScoreOutcome:
    """G: scores and verdict. A verdict that contradicts the scores is sent back once; if the scorer
    insists, the scores decide (the rule is the prompt's own)."""
    payload = {"instruction": instruction, "scene_report": report.model_dump(mode="json"), "bt_xml": bt_xml,
               "conformance": {"ok": not conformance_issues, "issues": [i.model_dump() for i in conformance_issues]},
               "threshold": threshold}
    score, record = call_agent(client, agent="G scorer", prompt_name="scorer", role="teacher.scorer",
                               task="Score this behavior tree.", payload=payload, schema=ScoreReply,
                               verdict_of=lambda r: r.verdict)
    calls, note = [record], ""
    if score.verdict != _verdict_for(score, threshold):
        contradiction = (f"Your verdict {score.verdict} contradicts your scores (threshold {threshold}: "
                         f"ACCEPT only when every score reaches it). Score again.")
        score, record = call_agent(client, agent="G scorer", prompt_name="scorer", role="teacher.scorer",
                                   task=contradiction, payload=payload, schema=ScoreReply, verdict_of=lambda r: r.verdict)
        calls.append(record)
        note = "verdict contradicted the scores once; re-asked"
        if score.verdict != _verdict_for(score, threshold):
            score = score.model_copy(update={"verdict": _verdict_for(score, threshold)})
            note = "verdict contradicted the scores twice; the scores decided"
    return ScoreOutcome(score=score, accepted=score.verdict == "ACCEPT", note=note, calls=calls)
