"""The offline teacher: deterministic answers for every teacher agent role.

Registered with ``@offline_role`` (imported lazily by ``resources.llm.roles``). Each handler reads
the structured input the agent sent and replies with JSON matching the agent's schema — what a
hosted model has to return. It reads text and metadata only: it cannot see pixels, and its scene
report says so. With ``request.inject_domain_fault`` a handler returns a plausible but wrong
answer (the architect: one error of the critic's taxonomy via ``fault_injection``, e.g. PLACE
before GRASP, a made-up object, a non-PAL ``PickUp``; later agents: ``timeout_ms``, broken XML …)
so the critic and repair loops have something to catch.
"""

from __future__ import annotations

import random
import re
from typing import Optional

from lxml import etree

from resources.llm import OfflineRequest, offline_role
from teacher_assets.bt.conformance import ALLOWED_CONTROL, ALLOWED_DECORATORS, ALLOWED_LEAVES
from teacher_assets.bt.pal import PAL_ACTIONS, PAL_V1

from .fault_injection import INJECTABLE, inject_fault
from .instruction_parser import parse_instruction
from .offline_critic import review_tree, score_tree
from .pal_planner import draft_xml, plan_task
from .schemas import (ArchitectReply, FeasibilityReply, RepairReply, SceneReport, ScoreReply,
                      SubtreeReply, TreeEditReply)


def _reply(model) -> str:
    return model.model_dump_json()


def _report(data) -> Optional[SceneReport]:
    return SceneReport.model_validate(data) if data else None


# ------------------------------------------------------------------------------------ A
@offline_role("teacher.feasibility")
def feasibility(request: OfflineRequest) -> str:
    parsed = parse_instruction(request.input["instruction"])
    if request.inject_domain_fault:  # an over-eager gatekeeper: waves everything through
        return _reply(FeasibilityReply(feasible=True, reason="every step maps to a PAL primitive",
                                       required_primitives=["NAVIGATE_TO", "GRASP"]))
    if not parsed.feasible:
        return _reply(FeasibilityReply(
            feasible=False, blocking_verbs=[s.detail for s in parsed.skips], reason_codes=parsed.reason_codes,
            reason="; ".join(f"[{s.reason_code}] {s.reason}" for s in parsed.skips) or "no PAL v1 goal in the instruction"))
    steps = [s for p in plan_task(parsed) for s in p.steps]
    needed = sorted({s.primitive for s in steps}, key=PAL_ACTIONS.index)
    return _reply(FeasibilityReply(feasible=True, required_primitives=needed, notes=parsed.notes,
                                   reason=f"{len(parsed.goals)} goal(s) decompose into {', '.join(needed)}"))


# ------------------------------------------------------------------------------------ B
@offline_role("teacher.scene_analysis")
def scene_analysis(request: OfflineRequest) -> str:
    data = request.input
    metadata = data.get("metadata") or {}
    meta_objects = [str(o) for o in metadata.get("objects", [])]
    parsed = parse_instruction(data["instruction"], known_objects=tuple(meta_objects))
    entities = list(dict.fromkeys(parsed.entities() + meta_objects))
    states = {str(k): str(v) for k, v in (metadata.get("object_states") or {}).items()}
    steps = [s for p in plan_task(parsed, states) for s in p.steps]
    favorable = [f"{k} is {v} (metadata)" for k, v in states.items()]
    unfavorable = [f"state of {o} unknown without vision: assume closed" for o in entities
                   if o not in states and any(s.primitive == "OPEN" and s.obj == o for s in steps)]
    hints = ["NAVIGATE_TO each object before manipulating it"]
    hints += [f"OPEN {s.obj} before grasping: OPEN needs an empty hand" for s in steps if s.primitive == "OPEN"]
    hints += [f"TOGGLE_ON {s.obj} before grasping: SOAK_UNDER needs the source running" for s in steps
              if s.primitive == "TOGGLE_ON" and any(t.primitive == "SOAK_UNDER" for t in steps)]
    held = [s.obj for s in steps if s.primitive == "GRASP"]
    predicted = [f"GRASP {o} may slip: retry and re-approach" for o in held]
    if request.inject_domain_fault:  # a hallucinated obstacle the frames do not show
        entities.append("glass_vase")
        unfavorable.append("a fragile glass_vase stands next to the target")
    source = metadata.get("source_dataset") or metadata.get("source") or "unknown source"
    report = SceneReport(
        scene_description=(f"Task-relevant entities named by the instruction and metadata: {', '.join(entities) or 'none'}"
                           f" (episode from {source}). Spatial relations cannot be established without vision."),
        entities=entities,
        dynamic_progression=(f"Not observed ({data.get('frame_count', 0)} frames were attached but not analysed). "
                             f"From the instruction, the robot is expected to: {data['instruction'].strip()}"),
        favorable_conditions=favorable,
        unfavorable_conditions=unfavorable,
        predicted_failures=predicted,
        planner_hints=hints,
        object_states=states,
        evidence="offline teacher: instruction text and episode metadata only; no pixels were analysed",
    )
    return _reply(report)


# ------------------------------------------------------------------------------------ C
@offline_role("teacher.architect")
def architect(request: OfflineRequest) -> str:
    data = request.input
    report = _report(data.get("scene_report"))
    parsed = parse_instruction(data["instruction"], known_objects=tuple(report.entities) if report else ())
    phases = plan_task(parsed, report.object_states if report else {})
    feedback = data.get("critic_feedback") or {}
    responses = [f"Addressed: {issue}" for issue in feedback.get("critical_issues", [])]
    responses += [f"Kept: {q} — the plan follows the scene report" for q in feedback.get("questions", [])
                  if not feedback.get("critical_issues")]
    if not phases:
        xml = ('<root BTCPP_format="4" main_tree_to_execute="MainTree">\n  <BehaviorTree ID="MainTree">\n'
               '    <AlwaysFailure name="no_pal_plan"/>\n  </BehaviorTree>\n</root>\n')
        return _reply(ArchitectReply(bt_xml=xml, responses=responses,
                                     rationale="no sequence of PAL primitives accomplishes this instruction"))
    used = sorted({s.obj for p in phases for s in p.steps if s.obj})
    xml = draft_xml(phases)
    if request.inject_domain_fault:
        xml = _faulty_draft(xml, report.entities if report else used, random.Random(request.seed))
    return _reply(ArchitectReply(
        bt_xml=xml, responses=responses,
        rationale=f"{len(phases)} phases over {', '.join(used)}; preconditions ordered (open/switch on before grasping)",
    ))


def _faulty_draft(xml: str, scene_objects: list[str], rng: random.Random) -> str:
    """A plausible architect mistake of the error taxonomy (PLACE before GRASP, a skipped step, a
    made-up object, OPEN on a non-openable, a non-PAL name, no obj …): the first kind this tree allows."""
    kinds = [k for k in INJECTABLE if k != "parse_error"]
    rng.shuffle(kinds)
    for kind in kinds:
        faulty = inject_fault(xml, kind, scene_objects=scene_objects, seed=rng.randrange(2**31))
        if faulty is not None:
            return faulty
    return xml


# ------------------------------------------------------------------------------------ C.5
@offline_role("teacher.critic")
def critic(request: OfflineRequest) -> str:
    data = request.input
    review = review_tree(data["instruction"], _report(data.get("scene_report")), data["bt_xml"],
                         int(data.get("iteration", 1)), int(data.get("max_iterations", 2)))
    if request.inject_domain_fault and review.verdict == "ACCEPT":
        # A nit-picking critic: a spurious concern about a sound tree (the architect justifies it).
        review = review.model_copy(update=dict(
            verdict="CONCERNS", logical_coherence=max(0, review.logical_coherence - 1),
            questions=review.questions + ["Is the final NAVIGATE_TO needed, or could the robot act from where it stands?"],
        ))
    return _reply(review)


# ------------------------------------------------------------------------------------ D, E
@offline_role("teacher.robustness")
def robustness(request: OfflineRequest) -> str:
    from teacher_assets.bt.model import BTParseError, parse_bt_xml, to_bt_xml
    from teacher_assets.bt.transforms import add_robustness

    try:
        xml = to_bt_xml(add_robustness(parse_bt_xml(request.input["bt_xml"])))
    except BTParseError as exc:  # nothing to harden; the conformance agent will repair or reject it
        return _reply(TreeEditReply(bt_xml=request.input["bt_xml"], changes=[f"left unchanged: unreadable tree ({exc})"]))
    changes = ["wrapped manipulation actions in RetryUntilSuccessful",
               "added Fallback recovery: re-approach with NAVIGATE_TO and retry"]
    if request.inject_domain_fault:  # a "safety" timeout PAL forbids
        xml, n = re.subn(r'(<Action ID="GRASP")', r'\1 timeout_ms="5000"', xml, count=1)
        if not n:
            xml = xml.replace('<Action ID="NAVIGATE_TO"', '<Action ID="MoveTo"', 1)
        changes.append("added a 5 s timeout to GRASP")
    return _reply(TreeEditReply(bt_xml=xml, changes=changes))


@offline_role("teacher.subtrees")
def subtrees(request: OfflineRequest) -> str:
    from teacher_assets.bt.model import BTParseError, parse_bt_xml, to_bt_xml
    from teacher_assets.bt.transforms import extract_subtrees

    try:
        doc, subtree_map = extract_subtrees(parse_bt_xml(request.input["bt_xml"]))
    except BTParseError as exc:
        return _reply(SubtreeReply(bt_xml=request.input["bt_xml"], changes=[f"left unchanged: unreadable tree ({exc})"]))
    xml = to_bt_xml(doc)
    if request.inject_domain_fault:  # a reply cut short: the closing tags are missing
        xml = xml[: xml.rfind("</BehaviorTree>")]
    return _reply(SubtreeReply(bt_xml=xml, subtree_map=subtree_map,
                               changes=[f"extracted {len(subtree_map.subtrees)} standard subtree(s)"]))


# ------------------------------------------------------------------------------------ F
_ALIASES = {"PICKUP": "GRASP", "PICK": "GRASP", "GRAB": "GRASP", "TAKE": "GRASP", "MOVETO": "NAVIGATE_TO",
            "GOTO": "NAVIGATE_TO", "NAVIGATE": "NAVIGATE_TO", "MOVEBASE": "NAVIGATE_TO", "PLACE": "PLACE_ON_TOP",
            "PLACEON": "PLACE_ON_TOP", "PUTON": "PLACE_ON_TOP", "PLACEIN": "PLACE_INSIDE", "PUTIN": "PLACE_INSIDE",
            "DROP": "RELEASE", "LETGO": "RELEASE", "TURNON": "TOGGLE_ON", "SWITCHON": "TOGGLE_ON",
            "TURNOFF": "TOGGLE_OFF", "SWITCHOFF": "TOGGLE_OFF", "SLICE": "CUT", "CLEAN": "WIPE"}
_BT_BUILTINS = ALLOWED_CONTROL | ALLOWED_DECORATORS | ALLOWED_LEAVES | {"root", "BehaviorTree", "TreeNodesModel"}
_BY_KEY = {a.replace("_", ""): a for a in PAL_ACTIONS}


def pal_name_for(name: str) -> Optional[str]:
    key = re.sub(r"[^A-Z]", "", name.upper())
    return _BY_KEY.get(key) or _ALIASES.get(key)


@offline_role("teacher.repairer")
def repairer(request: OfflineRequest) -> str:
    data = request.input
    if request.inject_domain_fault:  # claims a fix it did not make
        return _reply(RepairReply(bt_xml=data["bt_xml"], fixes=["checked the tree; it looks conformant"]))
    xml, fixes = repair_tree(data["bt_xml"])
    return _reply(RepairReply(bt_xml=xml, fixes=fixes))


def repair_tree(xml: str) -> tuple[str, list[str]]:
    """Mechanical fixes for the usual model mistakes, then the canonical form (with TreeNodesModel)."""
    from teacher_assets.bt.model import parse_bt_xml, to_bt_xml

    fixes: list[str] = []
    try:
        root = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        root = etree.fromstring(xml.encode("utf-8"), etree.XMLParser(recover=True, remove_blank_text=True))
        if root is None:
            return xml, [f"could not recover the XML: {exc}"]
        fixes.append(f"recovered malformed XML ({exc})")
    if root.get("BTCPP_format") != "4":
        root.set("BTCPP_format", "4")
        fixes.append('set BTCPP_format="4"')
    tree_ids = [t.get("ID") for t in root.iter("BehaviorTree")]
    if root.get("main_tree_to_execute") not in tree_ids and tree_ids:
        root.set("main_tree_to_execute", tree_ids[0])
        fixes.append(f"main_tree_to_execute={tree_ids[0]}")
    for models in root.findall("TreeNodesModel"):
        root.remove(models)  # regenerated from PAL v1 by the canonical writer
    last_target: Optional[str] = None
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "Action":
            name = el.get("ID") or ""
        elif el.tag not in _BT_BUILTINS and (el.tag in PAL_V1 or pal_name_for(el.tag)):
            name = el.tag  # compact leaf form: <PickUp obj="cup"/>
        else:
            continue
        pal = name if name in PAL_V1 else pal_name_for(name)
        if pal is None:
            continue
        if pal != name:
            fixes.append(f"{name} → {pal}")
            el.tag, el.attrib["ID"] = "Action", pal
        if "timeout_ms" in el.attrib:
            del el.attrib["timeout_ms"]
            fixes.append(f"removed timeout_ms from {pal}")
        for extra in [k for k in el.attrib if k not in ("ID", "name", "obj")]:
            del el.attrib[extra]
            fixes.append(f"removed port {extra} from {pal}")
        if pal == "RELEASE":
            el.attrib.pop("obj", None)
        elif not el.get("obj"):
            if last_target is None:
                continue
            el.set("obj", last_target)
            fixes.append(f"{pal} obj={last_target} (the object approached before it)")
        if pal == "NAVIGATE_TO" or el.get("obj"):
            last_target = el.get("obj")
    text = etree.tostring(root, encoding="unicode")
    try:
        return to_bt_xml(parse_bt_xml(text)), fixes
    except ValueError as exc:
        return text, fixes + [f"still not a BT document: {exc}"]


# ------------------------------------------------------------------------------------ G
@offline_role("teacher.scorer")
def scorer(request: OfflineRequest) -> str:
    data = request.input
    conformance = data.get("conformance") or {}
    score: ScoreReply = score_tree(data["instruction"], _report(data.get("scene_report")), data["bt_xml"],
                                   bool(conformance.get("ok")), len(conformance.get("issues", [])),
                                   int(data.get("threshold", 6)))
    if request.inject_domain_fault:  # a verdict that contradicts its own scores
        score = score.model_copy(update={"verdict": "REJECT" if score.verdict == "ACCEPT" else "ACCEPT"})
    return _reply(score)

