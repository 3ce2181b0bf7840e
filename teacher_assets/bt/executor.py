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
tick of the run (0-based, in trace order); ``persistent`` also fails every further tick of that
node on that object until the robot runs any other action (the grasp keeps slipping until the
robot does something else, e.g. re-approaches), so retries of the node are used up and only a
recovery branch can do the step. An injected failure changes nothing in the world.

``check_recoveries(xml, world)`` runs the tree once, then once more per guarded action tick of
that nominal run. An action tick is guarded when the action, or a ``<SubTree>`` call it runs
inside, lies in a non-last Fallback branch (recovery ``fallback``) or under a
``RetryUntilSuccessful`` with more than one attempt (``retry``) — judged per tick, so a subtree
called both inside and outside a Fallback is guarded only where it is. A ``fallback`` step fails
persistently, so the recovery branch must do the job; a ``retry`` step fails once. Every run
must succeed.

Public API: ``execute_symbolic``, ``ExecutionResult``, ``ActionRecord``, ``ConditionRecord``,
``StepFailure``, ``check_recoveries``, ``RecoveryReport``, ``InjectedRun``, ``local_recoveries``,
``recovery_of``.
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
    calls: list[str] = Field(default_factory=list)  # <SubTree> call paths it ran inside, outermost first
    status: str  # SUCCESS | FAILURE
    reason: str = ""  # violation code, "injected_failure" or ""

    @property
    def node(self) -> tuple[str, ...]:
        """This node instance: the same node reached through other SubTree calls is another instance."""
        return (*self.calls, self.path)


class ConditionRecord(BaseModel):
    condition: str
    obj: str | None = None
    path: str
    name: str | None = None
    value: bool


class StepFailure(BaseModel):
    """Fail the ``tick``-th action tick of a run; ``persistent``: also its repeats until another action runs."""

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
    failing: tuple | None = None  # (node instance, obj) of a persistent step failure while it lasts
    result = ExecutionResult(status="FAILURE", final_world=world)

    def injected(call: LeafCall, record: ActionRecord) -> bool:
        nonlocal failing
        tick = len(result.trace) - 1
        if fail_step is not None and tick == fail_step.tick:
            result.injected.append(f"tick:{tick}")
            failing = (record.node, call.obj) if fail_step.persistent else None
            return True
        if failing is not None:
            if failing == (record.node, call.obj):
                return True
            failing = None  # another action ran: the situation changed
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
        record = ActionRecord(action=call.action, obj=call.obj, path=call.path, name=call.name, calls=call.calls,
                              status="FAILURE")
        result.trace.append(record)
        if injected(call, record):
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


Recovery = Literal["fallback", "retry"]


def local_recoveries(xml: str | bytes) -> dict[str, Recovery]:
    """Paths of PAL actions and ``<SubTree>`` calls with a recovery inside their own tree.

    ``fallback``: in a non-last Fallback branch (a later branch can do it); ``retry``: otherwise
    under a RetryUntilSuccessful with more than one attempt.
    """
    doc = parse_bt_xml(xml)
    out: dict[str, Recovery] = {}

    def walk(node: BTNode, path: str, recovery: Recovery | None) -> None:
        if recovery and (pal_action_of(node) or node.tag == "SubTree"):
            out[path] = recovery
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


def recovery_of(record: ActionRecord, local: dict[str, Recovery]) -> Recovery | None:
    """The recovery of one action tick: the strongest along its SubTree calls and its own path."""
    found = {local.get(p) for p in record.node}
    return "fallback" if "fallback" in found else "retry" if "retry" in found else None


class InjectedRun(BaseModel):
    tick: int  # index of the failed action tick in the nominal trace
    path: str
    calls: list[str] = Field(default_factory=list)
    action: str
    obj: str | None = None
    recovery: Recovery
    status: str  # SUCCESS | FAILURE of the whole tree with this failure injected
    # "NAVIGATE_TO(cup)" … that succeeded only because of the failure (empty for a retry: it repeats the same node)
    recovery_actions: list[str] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)


class RecoveryReport(BaseModel):
    nominal: ExecutionResult
    runs: list[InjectedRun] = Field(default_factory=list)  # one per guarded action tick of the nominal run

    @property
    def failed_runs(self) -> list[InjectedRun]:
        return [r for r in self.runs if r.status != "SUCCESS"]

    @property
    def ok(self) -> bool:
        return self.nominal.ok and bool(self.runs) and not self.failed_runs


def check_recoveries(xml: str | bytes, world: SymbolicWorld, **kwargs) -> RecoveryReport:
    """The nominal run, then one run per guarded action tick with that step failing (module docstring)."""
    nominal = execute_symbolic(xml, world, **kwargs)
    report = RecoveryReport(nominal=nominal)
    if not nominal.ok:
        return report
    local = local_recoveries(xml)
    nominal_nodes = {(r.node, r.obj) for r in nominal.trace}
    for tick, record in enumerate(nominal.trace):
        recovery = recovery_of(record, local)
        if recovery is None:
            continue
        run = execute_symbolic(xml, world, fail_step=StepFailure(tick=tick, persistent=recovery == "fallback"), **kwargs)
        report.runs.append(InjectedRun(
            tick=tick, path=record.path, calls=record.calls, action=record.action, obj=record.obj, recovery=recovery,
            status=run.status, violations=run.violations,
            recovery_actions=[f"{r.action}({r.obj or ''})" for r in run.trace
                              if (r.node, r.obj) not in nominal_nodes and r.status == "SUCCESS"]))
    return report
