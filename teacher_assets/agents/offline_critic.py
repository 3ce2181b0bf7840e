"""The offline teacher's rule-based judgement: critic review (C.5) and quality score (G).

Both classify a tree's problems with the Embodied Agent Interface error taxonomy
(``schemas.ErrorLabel``), comparing the tree against the plan the offline teacher itself would
make from the instruction and the scene report, and playing its nominal path in the symbolic
world of ``bt.world`` — the executor's own rules, evaluated once there: PAL preconditions,
reachability from where NAVIGATE_TO left the robot, affordances (WIPE/CUT included), and the
guard conditions (``IsHolding``, ``IsOpen``, ``IsReachable``, ``IsToggledOn``) that skip a step
already done:

* grammar — ``parse_error``, ``hallucinated_action`` (not PAL v1), ``arity_error`` (no ``obj``,
  extra ports), ``hallucinated_object`` (not in the instruction or scene, or a place word such as
  "left" used as an object);
* runtime — ``affordance_violation`` (OPEN on a non-openable …), ``wrong_order`` (a step whose
  precondition a *later* step would have met, or steps in another order than the task's),
  ``missing_step`` (a needed step the tree never does, e.g. a lid taken off and never put down),
  ``extra_step`` (a world-changing step the task does not ask for);
* goal — ``wrong_relation`` (PLACE_ON_TOP where the task says inside, or "near Y" turned into
  PLACE_ON_TOP Y), ``wrong_object``, ``infeasible_task`` (the instruction has no PAL plan at all).

One step gets one label: a substituted step is labelled by why the substitute is wrong
(hallucinated, unafforded, other relation, other object), not also as missing + extra.
"""

from __future__ import annotations

from typing import Optional

from pydantic import BaseModel

from teacher_assets.bt.conditions import CONDITIONS
from teacher_assets.bt.pal import PAL_V1, name_tokens
from teacher_assets.bt.world import TOOL_USES, SymbolicWorld, Violation, world_for_objects

from .instruction_parser import ParsedInstruction, parse_instruction
from .pal_planner import PlanStep, plan_task, steps_of
from .schemas import CriticReply, ErrorLabel, SceneReport, ScoreReply, TreeError
from .tree_reading import ReadAction, ReadGuard, read_tree
from .vocabulary import RELATIONS, is_region_word

_PLACES = ("PLACE_ON_TOP", "PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT")
_SET_DOWN = (*_PLACES, "RELEASE")
# Words that name a relation or a place, never an object ("put the block on the left").
_RELATION_WORDS = {w for _, pattern in RELATIONS for w in name_tokens(pattern)} - {"the", "of", "to", "on", "at", "in"}


class Finding(BaseModel):
    label: ErrorLabel
    critical: bool
    issue: str
    question: str
    step: Optional[int] = None  # 1-based on the nominal path

    def error(self) -> TreeError:
        return TreeError(label=self.label, detail=self.issue, step=self.step, critical=self.critical)


def same_object(a: Optional[str], b: Optional[str]) -> bool:
    """'lamp' and 'desk_lamp' name the same thing (another model may keep the adjective)."""
    if a == b:
        return True
    ta, tb = set((a or "").split("_")), set((b or "").split("_"))
    return bool(ta and tb) and (ta <= tb or tb <= ta)


def _where(i: int, a: ReadAction) -> str:
    return f"step {i} ({a.action} {a.obj or ''})".strip()


def _unbound(obj: str) -> bool:
    """``{target}`` left after SubTree remapping and Scripts: no value reaches the action."""
    return obj.startswith("{") and obj.endswith("}")


def _is_place_word(obj: str) -> bool:
    tokens = name_tokens(obj)
    return bool(tokens) and all(is_region_word(t) or t in _RELATION_WORDS for t in tokens)


class Playthrough(BaseModel):
    """What playing a tree's nominal path in the symbolic world found."""

    findings: list[Finding] = []
    skipped: list[int] = []  # steps (1-based) a guard condition skipped: what they do already holds


def _guard_skips(a: ReadAction, world: SymbolicWorld, decided: dict[int, bool], settled: set[str]) -> bool:
    """Whether a guard of a Fallback around this step holds, asked once when its branch is reached.

    Whether something is open or on is asked only of what the scene report or an earlier step
    settled: the world's defaults (closed, off) are no evidence, and "close the door" implies it
    is open, so an unsettled state guard does not hold and the step runs."""
    def holds(g: ReadGuard) -> bool:
        if g.condition not in CONDITIONS or (g.condition in ("IsOpen", "IsToggledOn") and g.obj not in settled):
            return False
        return world.holds(g.condition, g.obj)[0] != g.negated

    for fallback in dict.fromkeys(g.fallback for g in a.guards):
        if fallback not in decided:
            decided[fallback] = any(holds(g) for g in a.guards if g.fallback == fallback)
        if decided[fallback]:
            return True
    return False


def _reached_by(world: SymbolicWorld, spot: Optional[str], obj: str) -> bool:
    """Whether NAVIGATE_TO spot, taken now, would bring obj within reach (the world's reachability rule)."""
    trial = world.model_copy(deep=True)
    return bool(spot) and trial.apply("NAVIGATE_TO", spot) is None and trial.reachable(obj)


def simulate_preconditions(actions: list[ReadAction], *, object_states: Optional[dict[str, str]] = None,
                           inside: Optional[dict[str, str]] = None, made_up: frozenset[str] = frozenset()
                           ) -> Playthrough:
    """Play the nominal path in the symbolic world of ``bt.world``; label each failed precondition.

    The world judges every step (reachability from where NAVIGATE_TO left the robot, hand, open
    containers, affordances); guard conditions are asked of it, so a guarded step whose effect
    already holds is skipped, as BehaviorTree.CPP would. The world holds every object the tree
    names: whether an object exists is judged before, with tolerance for other spellings
    (``classify_tree``), and steps on ``made_up`` objects are played silently (what they did to
    the world is unknown). A failed step is labelled ``wrong_order`` when a later step of the tree
    would have met its precondition, else ``missing_step``; its effect is then assumed, so one
    mistake is reported once and not again at every later step."""
    states = object_states or {}
    names = [a.obj for a in actions if a.obj] + [g.obj for a in actions for g in a.guards if g.obj]
    names += list(states) + list(inside or {})
    world = world_for_objects(names, open=[k for k, v in states.items() if v == "open"],
                              on=[k for k, v in states.items() if v == "on"],
                              inside={k: v for k, v in (inside or {}).items() if k in names})
    run = Playthrough()
    findings = run.findings
    decided: dict[int, bool] = {}
    settled = set(states)  # objects whose open / on state is known
    hand_unknown = False  # after a step we cannot play, what the hand holds is unknown until it is set
    reach_unknown = False  # … and where the base stands, until the next NAVIGATE_TO
    unknown_state: set = set()  # objects a step we cannot play acted on (open? on?)
    displaced: set[int] = set()  # steps found to come too late (their failures are the same mistake)
    for i, a in enumerate(actions, 1):
        if _guard_skips(a, world, decided, settled):
            run.skipped.append(i)
            continue
        where, later = _where(i, a), actions[i:]
        if not a.is_pal:
            findings.append(Finding(label="hallucinated_action", critical=True, step=i,
                                    issue=f"{where}: {a.action} is not a PAL v1 primitive",
                                    question=f"Which PAL v1 primitive did you mean by {a.action}?"))
            # Whatever it does, its consequences are not reported again downstream.
            hand_unknown = reach_unknown = True
            unknown_state.add(a.obj)
            continue
        spec = PAL_V1[a.action]
        if spec.ports and (not a.obj or _unbound(a.obj)):
            findings.append(Finding(label="arity_error", critical=True, step=i,
                                    issue=f"{where}: {a.action} has no obj" if not a.obj else
                                    f"{where}: {a.action} obj {a.obj} is a blackboard entry nothing sets",
                                    question=f"On which object should {a.action} act?"))
            hand_unknown = hand_unknown or spec.hand != "any"
            reach_unknown = reach_unknown or a.action == "NAVIGATE_TO"
            unknown_state.add(a.action)
            continue
        extra_ports = sorted(k for k in a.attrs if k not in ("ID", "name", *spec.ports))
        if extra_ports:
            findings.append(Finding(label="arity_error", critical=True, step=i,
                                    issue=f"{where}: {a.action} has ports PAL v1 does not define: {', '.join(extra_ports)}",
                                    question=f"Why does {a.action} carry {', '.join(extra_ports)}?"))
        silent = a.obj in made_up
        if silent:
            unknown_state.add(a.obj)
        set_aside: Optional[str] = None  # what a step needing an empty hand found in it
        stood: Optional[tuple] = None  # where the robot really is while a step out of reach is judged
        violation = world.apply(a.action, a.obj)
        for _ in range(3):  # a step can fail for its hand, its approach and its object; each is judged once
            if violation is None:
                break
            unknowable = silent or i in displaced or (world.held in made_up and violation.code in _HELD_CODES) or (
                hand_unknown and violation.code in ("hand_empty", "hand_not_empty")) or (
                reach_unknown and violation.code == "not_reachable") or (
                unknown_state and violation.code in ("container_closed", "inside_closed_container", "source_off"))
            if not unknowable:
                finding = _precondition_finding(i, a, violation, later, world)
                findings.append(finding)
                if finding.label == "wrong_order":  # the late step's own failure is part of this mistake
                    fix = _FIXED_BY.get(violation.code, ())
                    displaced.add(next((k for k, b in enumerate(later, i + 1) if b.action in fix), 0))
            if violation.code == "not_reachable":  # judge the action itself, not the approach again
                if not unknowable:  # the base stays where the tree left it (unknown: the unplayable step moved it)
                    stood = (world.robot_at, world.robot_site)
                world.apply("NAVIGATE_TO", a.obj)
            elif violation.code == "hand_not_empty":
                set_aside, world.held = world.held, None
            else:
                break
            violation = world.apply(a.action, a.obj)
        # Assume the step took effect, so its consequences are not reported again at later steps.
        if violation is not None and a.action == "GRASP":
            world.held = a.obj
        elif violation is not None and a.action in _SET_DOWN:
            world.held = None
        if set_aside and a.action != "GRASP":
            world.held = set_aside
        if stood is not None:
            world.robot_at, world.robot_site = stood
        hand_unknown = hand_unknown and a.action not in ("GRASP", *_SET_DOWN)
        reach_unknown = reach_unknown and a.action != "NAVIGATE_TO"
        if a.action in ("OPEN", "CLOSE", "TOGGLE_ON", "TOGGLE_OFF"):
            settled.add(a.obj)
    return run


# Failures that judge the held object: unknown when it is made up (what it affords is unknown).
_HELD_CODES = {use.tool_code for use in TOOL_USES.values()} | {"same_object"}
# The steps that would have met a failed precondition, had they come first.
_FIXED_BY = {"hand_not_empty": _SET_DOWN, "hand_empty": ("GRASP",), "container_closed": ("OPEN",),
             "inside_closed_container": ("OPEN",), "source_off": ("TOGGLE_ON",)}


def _precondition_finding(i: int, a: ReadAction, violation: Violation, later: list[ReadAction],
                          world: SymbolicWorld) -> Finding:
    where, code, message, held = _where(i, a), violation.code, violation.message, world.held
    setdowns = sum(b.action in _SET_DOWN for b in later)
    grasps = sum(b.action == "GRASP" for b in later)
    if code == "not_reachable":
        # A later NAVIGATE_TO that would bring the object within reach is the approach that belongs here.
        late = any(b.action == "NAVIGATE_TO" and _reached_by(world, b.obj, a.obj) for b in later)
        spot = f"next to {world.robot_at}" if world.robot_at else "next to nothing yet"
        return Finding(label="wrong_order" if late else "missing_step", critical=True, step=i,
                       issue=f"{where}: no NAVIGATE_TO {a.obj} before {a.action}: out of reach, the robot is {spot}"
                             + (" (the approach comes later)" if late else ""),
                       question=f"How does the robot reach {a.obj} for {a.action} without NAVIGATE_TO?")
    if code == "hand_not_empty":
        # A later PLACE/RELEASE that no later GRASP needs is the set-down that belongs here.
        label = "wrong_order" if setdowns > grasps + (a.action == "GRASP") else "missing_step"
        return Finding(label=label, critical=True, step=i, issue=f"{where}: {a.action} needs an empty hand but {held} is held",
                       question=f"What happens to {held} before {a.action}?")
    if code == "hand_empty":
        label = "wrong_order" if grasps > setdowns else "extra_step" if a.action == "RELEASE" else "missing_step"
        return Finding(label=label, critical=True, step=i, issue=f"{where}: {a.action} before GRASP: nothing is held",
                       question=f"Why {a.action} before anything is grasped?")
    if code in ("container_closed", "inside_closed_container", "source_off"):
        fix = "TOGGLE_ON" if code == "source_off" else "OPEN"
        label = "wrong_order" if any(b.action == fix for b in later) else "missing_step"
        return Finding(label=label, critical=True, step=i, issue=f"{where}: {message}",
                       question=f"Where is the {fix} that {a.action} {a.obj} needs, and is it before it?")
    if code == "unknown_object":
        return Finding(label="hallucinated_object", critical=True, step=i, issue=f"{where}: {message}",
                       question=f"Where is {a.obj} in the scene?")
    if code in ("missing_obj", "unbound_variable"):
        return Finding(label="arity_error", critical=True, step=i, issue=f"{where}: {message}",
                       question=f"On which object should {a.action} act?")
    # not_graspable, not_openable, not_toggleable, not_a_container, not_a_heat_source, held_not_slicer …
    return Finding(label="affordance_violation", critical=True, step=i, issue=f"{where}: {message} ({code})",
                   question=f"Can {a.action} act on {a.obj} at all?")


class _Expectation(BaseModel):
    parsed: ParsedInstruction
    steps: list[PlanStep]  # the key steps (no NAVIGATE_TO) the task needs, in order
    known: list[str]  # objects of the instruction, scene report and plan

    @property
    def sources(self) -> dict[str, str]:
        return {g.obj: g.source for g in self.parsed.goals if g.source}


def expectation(instruction: str, report: Optional[SceneReport]) -> _Expectation:
    parsed = parse_instruction(instruction, known_objects=tuple(report.entities) if report else ())
    steps = [s for s in steps_of(plan_task(parsed, report.object_states if report else {})) if s.primitive != "NAVIGATE_TO"]
    known = list(dict.fromkeys([*(report.entities if report else []), *parsed.entities(),
                                *(s.obj for s in steps if s.obj)]))
    return _Expectation(parsed=parsed, steps=steps, known=known)


def classify_tree(instruction: str, report: Optional[SceneReport], xml: str) -> tuple[list[Finding], int, int]:
    """Labelled findings for a tree, and (key steps of the task the tree covers, key steps needed)."""
    expected = expectation(instruction, report)
    reading = read_tree(xml)
    findings: list[Finding] = []
    if not expected.parsed.feasible:
        findings.append(Finding(label="infeasible_task", critical=True,
                                issue="the tree cannot accomplish the instruction: "
                                      + "; ".join(f"[{s.reason_code}] {s.reason}" for s in expected.parsed.skips),
                                question="Which PAL primitive performs this task at all?"))
    if not reading.well_formed or reading.error:
        findings.append(Finding(label="parse_error", critical=True, issue=f"the tree is not readable: {reading.error}",
                                question="Can you give a complete, well-formed tree?"))
        return findings, 0, len(expected.steps)
    actions = reading.actions
    if not actions and expected.parsed.feasible:
        findings.append(Finding(label="missing_step", critical=True, issue="the tree has no actions",
                                question="Can you give a complete tree for the task?"))
    labelled: dict[int, Finding] = {}  # step → the finding that explains it

    def note(f: Finding) -> None:
        findings.append(f)
        if f.step is not None:
            labelled.setdefault(f.step, f)

    def ground(i: int, obj: str, what: str) -> None:
        if _is_place_word(obj):
            note(Finding(label="hallucinated_object", critical=True, step=i,
                         issue=f"{what}: '{obj}' names a place or relation, not an object",
                         question=f"'{obj}' is not an object: which object did you mean?"))
        elif not any(same_object(obj, k) for k in expected.known):
            note(Finding(label="hallucinated_object", critical=True, step=i,
                         issue=f"{what}: {obj} is neither in the instruction nor in the scene report",
                         question=f"The scene report does not mention {obj}; where is it?"))

    guards_seen: set[int] = set()
    for i, a in enumerate(actions, 1):
        if a.obj and a.is_pal and not _unbound(a.obj):
            ground(i, a.obj, _where(i, a))
        for g in a.guards:  # a guard asks about an object too
            if g.fallback not in guards_seen and g.obj and not _unbound(g.obj) and g.obj != a.obj:
                ground(i, g.obj, f"the guard {g.condition}({g.obj}) of {_where(i, a)}")
        guards_seen.update(g.fallback for g in a.guards)
    made_up = frozenset(actions[i - 1].obj for i, f in labelled.items() if f.label == "hallucinated_object")
    run = simulate_preconditions(actions, object_states=report.object_states if report else {},
                                 inside=expected.sources, made_up=made_up)
    for f in run.findings:
        note(f)
    if not expected.parsed.feasible:
        for skip in expected.parsed.skips:
            for i, a in enumerate(actions, 1):
                if skip.reference and a.action in _PLACES and same_object(a.obj, skip.reference):
                    note(Finding(label="wrong_relation", critical=True, step=i,
                                 issue=f"{_where(i, a)}: the task wants {skip.obj or 'the object'} "
                                       f"{skip.detail.replace('_', ' ')} {skip.reference}, not {a.action} {a.obj}",
                                 question=f"Why {a.action} {a.obj} when the instruction says "
                                          f"'{skip.clause}'?"))
        return findings, 0, 0
    covered = _compare_with_plan(expected, actions, labelled, note, report, skipped=set(run.skipped))
    return findings, covered, len(expected.steps)


def _compare_with_plan(expected: _Expectation, actions: list[ReadAction], labelled: dict[int, Finding], note,
                       report: Optional[SceneReport], skipped: set[int]) -> int:
    """Missing, substituted, extra and reordered key steps; returns how many expected steps the tree does.

    Steps a guard skipped are not done: they neither cover a task step nor count as extra."""
    key = [(i, a) for i, a in enumerate(actions, 1) if a.action != "NAVIGATE_TO" and i not in skipped]
    unmatched_expected = list(range(len(expected.steps)))
    matched: list[tuple[int, int]] = []  # (tree step, expected index)
    for i, a in key:
        hit = next((j for j in unmatched_expected if expected.steps[j].primitive == a.action
                    and (a.action == "RELEASE" or same_object(a.obj, expected.steps[j].obj))), None)
        if hit is not None:
            unmatched_expected.remove(hit)
            matched.append((i, hit))
    matched_steps = {i for i, _ in matched}
    spare = [(i, a) for i, a in key if i not in matched_steps]
    for j in unmatched_expected:
        want = expected.steps[j]
        sub = next(((i, a) for i, a in spare if a.action == want.primitive), None) or next(
            ((i, a) for i, a in spare if want.primitive in _PLACES and a.action in _PLACES and same_object(a.obj, want.obj)),
            None) or next(  # a non-PAL name or an obj-less action in its place is already labelled
            ((i, a) for i, a in spare if i in labelled and labelled[i].label in ("hallucinated_action", "arity_error")
             and (a.obj is None or same_object(a.obj, want.obj))), None)
        wanted = f"{want.primitive} {want.obj or ''}".strip()
        if sub is None:
            note(Finding(label="missing_step", critical=True,
                         issue=f"the task needs {wanted} but the tree never does it"
                               + (" (it keeps holding what it took)" if want.primitive in _SET_DOWN else ""),
                         question=f"Where in the tree is {wanted}?"))
            continue
        i, a = sub
        spare.remove(sub)
        if i in labelled:
            continue  # already explained: a made-up or unafforded object in this slot
        label = "wrong_relation" if a.action != want.primitive else "wrong_object"
        note(Finding(label=label, critical=True, step=i, issue=f"{_where(i, a)}: the task needs {wanted} here",
                     question=f"Why {a.action} {a.obj} where the instruction asks for {wanted}?"))
    states = report.object_states if report else {}
    for i, a in spare:
        if i in labelled:
            if labelled[i].label in ("missing_step", "wrong_order"):  # it fails because it should not be there
                labelled[i].label = "extra_step"
                labelled[i].issue += " — a step the task does not ask for"
            continue
        redundant = (a.action == "OPEN" and states.get(a.obj or "") == "open") or (
            a.action == "TOGGLE_ON" and states.get(a.obj or "") == "on")
        note(Finding(label="extra_step", critical=not redundant, step=i,
                     issue=f"{_where(i, a)}: the task does not ask for it"
                           + (f" (the report says {a.obj} is already {states.get(a.obj or '')})" if redundant else ""),
                     question=f"Why {a.action} {a.obj or ''}?".replace(" ?", "?")))
    pairs = sorted(matched)
    if not any(f.label == "wrong_order" for f in labelled.values()):
        for (i, j), (_, k) in zip(pairs, pairs[1:]):
            if k < j:
                a, before = actions[i - 1], expected.steps[k]
                note(Finding(label="wrong_order", critical=True, step=i,
                             issue=f"{_where(i, a)} comes before {before.primitive} {before.obj or ''}".rstrip()
                                   + ", against the order of the task",
                             question=f"Why {a.action} {a.obj or ''} before {before.primitive} {before.obj or ''}?"
                                      .replace(" ?", "?")))
    return len(matched)


def review_tree(instruction: str, report: Optional[SceneReport], xml: str, iteration: int, max_iterations: int) -> CriticReply:
    findings, _, _ = classify_tree(instruction, report, xml)
    critical = [f for f in findings if f.critical]
    minor = [f for f in findings if not f.critical]
    blocked = any(f.label in ("infeasible_task",) for f in critical)
    verdict = "ACCEPT" if not critical else "REJECT" if blocked or iteration >= max_iterations else "CONCERNS"
    grounding_errors = [f for f in critical if f.label in ("hallucinated_object", "wrong_object", "wrong_relation")]
    return CriticReply(
        logical_coherence=0 if blocked else max(0, 10 - 3 * (len(critical) - len(grounding_errors))),
        visual_grounding=0 if blocked else max(0, 10 - 3 * len(grounding_errors) - 2 * len(minor)),
        questions=[f.question for f in findings],
        critical_issues=[f"[{f.label}] {f.issue}" for f in critical],
        suggestions=[f"consider: {f.issue}" for f in minor],
        errors=[f.error() for f in findings],
        verdict=verdict,
    )


def score_tree(instruction: str, report: Optional[SceneReport], xml: str, conformance_ok: bool,
               conformance_issue_count: int, threshold: int) -> ScoreReply:
    reading = read_tree(xml)
    findings, covered, needed = classify_tree(instruction, report, xml)
    critical = [f for f in findings if f.critical]
    structure = min(10, 4 + min(3, reading.depth // 2) + (2 if reading.subtree_calls else 0) + (1 if reading.control_nodes >= 3 else 0))
    robustness = min(10, 2 + 2 * min(reading.retries, 2) + 2 * min(reading.fallbacks, 2))
    compliance = 10 if conformance_ok else max(0, 7 - 2 * conformance_issue_count)
    grounding = round(10 * covered / needed) if needed else 0
    if critical:
        grounding = min(grounding, threshold - 1)  # a nominal path with a labelled error does not do the task
    scores = dict(structure=structure, robustness=robustness, compliance=compliance, grounding=grounding)
    weak = [k for k, v in scores.items() if v < threshold]
    labels = sorted({f.label for f in critical})
    return ScoreReply(
        **scores,
        verdict="REJECT" if weak else "ACCEPT",
        rationale=(f"below threshold {threshold}: {', '.join(weak)}" + (f" (errors: {', '.join(labels)})" if labels else "")
                   if weak else
                   f"all scores ≥ {threshold}: depth {reading.depth}, {reading.retries} retries, "
                   f"{reading.fallbacks} fallbacks, {reading.subtree_calls} subtree calls, "
                   f"{covered}/{needed} task steps"),
        errors=[f.error() for f in critical],
    )
