"""Symbolic execution of a PAL tree: BehaviorTree.CPP ticks the tree, a symbolic world plays the actions.

The control flow (Sequence, Fallback, RetryUntilSuccessful, SubTree remapping, Script …) is run
by BehaviorTree.CPP itself through ``btcpp.run_in_btcpp``; each PAL action is applied to the
episode's ``SymbolicWorld`` (``world.py``: objects from the episode, reachability, PAL v1
preconditions, WIPE/CUT affordances) and each guard condition (``conditions.py``) is answered
from it. An action whose precondition fails returns FAILURE and the violation is recorded — the
tree's own recovery branches then decide what happens, exactly as on a robot. A tree that names
an object the episode lacks fails even when a recovery branch hides it: no recovery makes a
missing object appear.

Refusals before ticking: ``load_error`` (BT.CPP could not build the tree), ``unbounded_loop``,
``forbidden_node``. After ticking: ``max_ticks_exceeded``, ``action_budget_exceeded``,
``unbound_variable``; the world's violation codes are listed in ``world.py``.

Failure injection. ``fail_once`` injects one FAILURE per selector: a PAL action name
(``"GRASP"``: its first tick), a node path (``"Main/Sequence/Fallback[2]/GRASP[0]"``) or a node
``name`` (``"node_07"``). ``fail_step=StepFailure(tick=k, persistent=…)`` fails the k-th action
tick of the run (0-based, in trace order); ``persistent`` also fails every later tick of the same
node on the same object (this way of doing the step does not work here), so only a *different*
branch can do it. An injected failure changes nothing in the world, like a slipped grasp.

``check_recoveries(xml, world)`` runs the tree once, then once more per guarded step the nominal
run ticks (``guarded_steps``): a step whose recovery is a Fallback branch fails persistently, so
that branch must do the job; a step guarded only by a retry fails once. Every run must succeed.

Public API: ``execute_symbolic``, ``ExecutionResult``, ``ActionRecord``, ``ConditionRecord``,
``StepFailure``, ``guarded_steps``, ``GuardedStep``, ``check_recoveries``,
``RecoveryReport``, ``InjectedRun``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .btcpp import LeafCall, run_in_btcpp
from .conformance import FORBIDDEN_NODES
from .model import BTDocument, BTNode, BTParseError, iter_nodes, node_label, pal_action_of, parse_bt_xml
from .pal import MAX_LOOP_COUNT
from .world import SymbolicWorld, Violation

_LOOP_ATTR = {"RetryUntilSuccessful": "num_attempts", "Repeat": "num_cycles"}
# Violations no recovery branch can excuse: the tree fails even if BT.CPP reports SUCCESS.
_FATAL = {"unknown_object"}


class ActionRecord(BaseModel):
    action: str
    obj: str | None = None
    path: str
    name: str | None = None
    status: str  # SUCCESS | FAILURE
    reason: str = ""  # violation code, "injected_failure" or ""


class ConditionRecord(BaseModel):
    condition: str
    obj: str | None = None
    path: str
    name: str | None = None
    value: bool


class StepFailure(BaseModel):
    """Fail the ``tick``-th action tick of a run; ``persistent``: also every later tick of that node on that object."""

    tick: int
    persistent: bool = False


class ExecutionResult(BaseModel):
    status: str  # SUCCESS | FAILURE
    trace: list[ActionRecord] = Field(default_factory=list)  # PAL action ticks, in order
    conditions: list[ConditionRecord] = Field(default_factory=list)  # guard condition ticks, in order
    violations: list[Violation] = Field(default_factory=list)
    ticks: int = 0
    final_world: SymbolicWorld | None = None
    injected: list[str] = Field(default_factory=list)  # fail_once selectors / "tick:<k>" that fired

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"


def _refusals(doc: BTDocument) -> list[Violation]:
    """Trees the executor will not tick: they could loop without end or wait on the wall clock."""
    out = []
    for tree in doc.trees:
        for path, node in iter_nodes(tree):
            if node.tag in FORBIDDEN_NODES:
                out.append(Violation(code="forbidden_node", message=f"<{node.tag}> is time based", action=node.tag, path=path))
            attr = _LOOP_ATTR.get(node.tag)
            raw = node.attrs.get(attr, "").strip() if attr else ""
            if attr and not (raw.isdigit() and 1 <= int(raw) <= MAX_LOOP_COUNT):
                out.append(Violation(code="unbounded_loop", action=node.tag, path=path,
                                     message=f"{attr}=\"{raw}\" must be an integer in 1..{MAX_LOOP_COUNT}"))
    return out


def execute_symbolic(xml: str | bytes, world: SymbolicWorld, *, fail_once: set[str] | str | None = None,
                     fail_step: StepFailure | None = None, max_ticks: int = 50,
                     max_actions: int = 500) -> ExecutionResult:
    """Tick the tree in BT.CPP against a copy of the episode's ``world`` (``world_for_episode``)."""
    try:
        doc = parse_bt_xml(xml)
    except BTParseError as exc:
        return ExecutionResult(status="FAILURE", violations=[Violation(code="load_error", message=str(exc), action="")])
    refusals = _refusals(doc)
    if refusals:
        return ExecutionResult(status="FAILURE", violations=refusals)
    world = world.model_copy(deep=True)
    pending = {fail_once} if isinstance(fail_once, str) else set(fail_once or ())
    failing: tuple[str, str | None] | None = None  # (path, obj) of a persistent step failure once it fired
    result = ExecutionResult(status="FAILURE", final_world=world)

    def injected(call: LeafCall) -> bool:
        nonlocal failing
        tick = len(result.trace) - 1
        if fail_step is not None and tick == fail_step.tick:
            result.injected.append(f"tick:{tick}")
            failing = (call.path, call.obj) if fail_step.persistent else None
            return True
        if failing == (call.path, call.obj):
            return True
        hit = next((s for s in sorted(pending) if s in (call.action, call.path, call.name)), None)
        if hit is not None:
            pending.discard(hit)
            result.injected.append(hit)
            return True
        return False

    def on_condition(call: LeafCall) -> bool:
        if call.unbound:
            value, violation = False, Violation(code="unbound_variable", action=call.action, obj=None,
                                                message=f"{{{call.unbound}}} has no blackboard entry when {call.action} runs")
        else:
            value, violation = world.holds(call.action, call.obj)
        if violation is not None:
            violation.path = call.path
            result.violations.append(violation)
        result.conditions.append(ConditionRecord(condition=call.action, obj=call.obj, path=call.path, name=call.name,
                                                 value=value))
        return value

    def on_action(call: LeafCall) -> bool:
        if len(result.trace) >= max_actions:
            if not any(v.code == "action_budget_exceeded" for v in result.violations):
                result.violations.append(Violation(code="action_budget_exceeded", action=call.action, path=call.path,
                                                   message=f"more than {max_actions} actions ticked"))
            return False
        record = ActionRecord(action=call.action, obj=call.obj, path=call.path, name=call.name, status="FAILURE")
        result.trace.append(record)
        if injected(call):
            record.reason = "injected_failure"
            return False
        if call.unbound:
            violation = Violation(code="unbound_variable", action=call.action, path=call.path,
                                  message=f"{{{call.unbound}}} has no blackboard entry when {call.action} runs")
        else:
            violation = world.apply(call.action, call.obj)
        if violation is not None:
            violation.path = call.path
            result.violations.append(violation)
            record.reason = violation.code
            return False
        record.status = "SUCCESS"
        return True

    run = run_in_btcpp(xml, lambda call: on_condition(call) if call.kind == "condition" else on_action(call),
                       max_ticks=max_ticks)
    result.ticks = run.ticks
    if run.status == "ERROR":
        result.violations.append(Violation(code="load_error", message=run.error, action=""))
    elif run.status == "RUNNING":
        result.violations.append(Violation(code="max_ticks_exceeded", action="",
                                           message=f"still RUNNING after {max_ticks} ticks"))
    fatal = any(v.code in _FATAL for v in result.violations)
    result.status = "SUCCESS" if run.status == "SUCCESS" and not fatal else "FAILURE"
    return result


class GuardedStep(BaseModel):
    path: str
    recovery: Literal["fallback", "retry"]  # a later Fallback branch can do it / only a retry repeats it


def guarded_steps(xml: str | bytes) -> list[GuardedStep]:
    """PAL actions with a recovery: in a non-last Fallback branch, or under a RetryUntilSuccessful (> 1 attempt).

    These are the steps at which an injected failure must still let the tree reach SUCCESS.
    """
    doc = parse_bt_xml(xml)
    out: list[GuardedStep] = []

    def walk(node: BTNode, path: str, recovery: str | None) -> None:
        if pal_action_of(node) and recovery:
            out.append(GuardedStep(path=path, recovery=recovery))
        retries = node.attrs.get("num_attempts", "").strip()
        for i, child in enumerate(node.children):
            r = recovery
            if node.tag in ("Fallback", "ReactiveFallback") and i < len(node.children) - 1:
                r = "fallback"
            elif node.tag == "RetryUntilSuccessful" and retries.isdigit() and int(retries) > 1:
                r = recovery or "retry"
            walk(child, f"{path}/{node_label(child)}[{i}]", r)

    for tree in doc.trees:
        walk(tree.root, f"{tree.id}/{node_label(tree.root)}", None)
    return out


class InjectedRun(BaseModel):
    tick: int  # index of the failed action tick in the nominal trace
    path: str
    action: str
    obj: str | None = None
    recovery: Literal["fallback", "retry"]
    status: str  # SUCCESS | FAILURE of the whole tree with this failure injected
    # "NAVIGATE_TO(cup)" … that succeeded only because of the failure (empty for a retry: it repeats the same node)
    recovery_actions: list[str] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)


class RecoveryReport(BaseModel):
    nominal: ExecutionResult
    guarded: list[GuardedStep] = Field(default_factory=list)
    runs: list[InjectedRun] = Field(default_factory=list)  # one per guarded step the nominal run ticks

    @property
    def failed_runs(self) -> list[InjectedRun]:
        return [r for r in self.runs if r.status != "SUCCESS"]

    @property
    def ok(self) -> bool:
        return self.nominal.ok and bool(self.runs) and not self.failed_runs


def check_recoveries(xml: str | bytes, world: SymbolicWorld, **kwargs) -> RecoveryReport:
    """The nominal run, then one run per guarded step it ticks with that step failing (module docstring)."""
    nominal = execute_symbolic(xml, world, **kwargs)
    report = RecoveryReport(nominal=nominal)
    if not nominal.ok:
        return report
    report.guarded = guarded_steps(xml)
    kind = {s.path: s.recovery for s in report.guarded}
    nominal_nodes = {(r.path, r.obj) for r in nominal.trace}
    for tick, record in enumerate(nominal.trace):
        if record.path not in kind:
            continue
        run = execute_symbolic(xml, world, fail_step=StepFailure(tick=tick, persistent=kind[record.path] == "fallback"),
                               **kwargs)
        report.runs.append(InjectedRun(
            tick=tick, path=record.path, action=record.action, obj=record.obj, recovery=kind[record.path],
            status=run.status, violations=run.violations,
            recovery_actions=[f"{r.action}({r.obj or ''})" for r in run.trace
                              if (r.path, r.obj) not in nominal_nodes and r.status == "SUCCESS"]))
    return report
