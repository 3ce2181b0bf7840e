"""Symbolic execution of a PAL tree: BehaviorTree.CPP ticks the tree, a symbolic world plays the actions.

The control flow (Sequence, Fallback, RetryUntilSuccessful, SubTree remapping, Script …) is run
by BehaviorTree.CPP itself through ``btcpp.run_in_btcpp``; each PAL action is applied to a
``SymbolicWorld`` that enforces the PAL v1 preconditions (see ``pal.py``). An action whose
precondition fails returns FAILURE and the violation is recorded — the tree's own recovery
branches then decide what happens, exactly as on a robot.

World model: objects with affordances (``pal.infer_affordances`` unless given), open/closed,
on/off, soaked, wiped, cut, and a location relation (``on_top``/``inside``/``near``/``released``
+ target, or ``held``); the robot's hand (``held``) and base (``robot_at``). Defaults:
openables start closed, toggleables off, nothing held.

Precondition violations (codes): ``hand_not_empty``, ``hand_empty``, ``unknown_object``,
``missing_obj``, ``unbound_variable``, ``not_graspable``, ``inside_closed_container``,
``not_openable``, ``not_toggleable``, ``not_a_container``, ``container_closed``,
``not_a_fluid_source``, ``source_off``, ``not_a_heat_source``, ``held_not_slicer``, ``same_object``.
Warnings (recorded, action still succeeds): ``not_navigated`` (manipulating an object the robot
did not NAVIGATE_TO first).
Refusals before ticking: ``load_error`` (BT.CPP could not build the tree), ``unbounded_loop``,
``forbidden_node``. After ticking: ``max_ticks_exceeded``, ``action_budget_exceeded``.

``fail_once`` injects one FAILURE per selector: a PAL action name (``"GRASP"``: its first tick), a
node path (``"Main/Sequence/Fallback[2]/GRASP[0]"``) or a node ``name`` (``"node_07"``). The
injected failure changes nothing in the world, like a slipped grasp.

Public API: ``SymbolicWorld``, ``WorldObject``, ``world_for_objects``, ``world_for_tree``,
``execute_symbolic``, ``ExecutionResult``, ``ActionRecord``, ``Violation``,
``guarded_action_paths``.
"""

from __future__ import annotations

import re
from typing import Iterable

from pydantic import BaseModel, Field

from .btcpp import LeafCall, run_in_btcpp
from .conformance import FORBIDDEN_NODES
from .model import BTDocument, BTNode, BTParseError, iter_nodes, node_label, pal_action_of, parse_bt_xml, variables_in
from .pal import MAX_LOOP_COUNT, PAL_V1, Affordances, infer_affordances

_LOOP_ATTR = {"RetryUntilSuccessful": "num_attempts", "Repeat": "num_cycles"}


class WorldObject(BaseModel):
    name: str
    affordances: Affordances
    is_open: bool = False
    toggled_on: bool = False
    soaked: bool = False
    wiped: bool = False
    cut: bool = False
    relation: str | None = None  # on_top | inside | near | released | held
    relation_target: str | None = None


class Violation(BaseModel):
    code: str
    message: str
    action: str
    obj: str | None = None
    path: str = ""


class SymbolicWorld(BaseModel):
    objects: dict[str, WorldObject] = Field(default_factory=dict)
    held: str | None = None
    robot_at: str | None = None

    def _container_of(self, name: str) -> WorldObject | None:
        o = self.objects[name]
        if o.relation == "inside" and o.relation_target in self.objects:
            return self.objects[o.relation_target]
        return None

    def apply(self, action: str, obj: str | None) -> tuple[Violation | None, list[str]]:
        """Apply one primitive; returns (violation or None, warnings). State changes only on success."""
        prim = PAL_V1[action]

        def fail(code: str, message: str) -> tuple[Violation, list[str]]:
            return Violation(code=code, message=message, action=action, obj=obj), []

        if "obj" in prim.ports:
            if not obj:
                return fail("missing_obj", f"{action} needs an object")
            if obj not in self.objects:
                return fail("unknown_object", f"{action}: no object \"{obj}\" in the world")
        if prim.hand == "empty" and self.held:
            return fail("hand_not_empty", f"{action} needs an empty hand but the robot holds {self.held}")
        if prim.hand == "holding" and not self.held:
            return fail("hand_empty", f"{action} needs a held object but the hand is empty")
        target = self.objects.get(obj) if obj else None
        held = self.objects.get(self.held) if self.held else None
        if prim.hand == "holding" and target is not None and held is not None and target.name == held.name:
            return fail("same_object", f"{action}: {obj} is the held object itself")
        warnings = []
        if target is not None and action not in ("NAVIGATE_TO",) and self.robot_at not in (obj, None) \
                and not (self._container_of(obj) and self._container_of(obj).name == self.robot_at):
            warnings.append(f"not_navigated: {action} {obj} while the robot is at {self.robot_at}")
        a = target.affordances if target is not None else None

        if action == "NAVIGATE_TO":
            self.robot_at = obj
        elif action == "GRASP":
            if not a.graspable:
                return fail("not_graspable", f"{obj} cannot be picked up")
            box = self._container_of(obj)
            if box is not None and box.affordances.openable and not box.is_open:
                return fail("inside_closed_container", f"{obj} is inside {box.name}, which is closed")
            self.held, target.relation, target.relation_target = obj, "held", None
        elif action in ("OPEN", "CLOSE"):
            if not a.openable:
                return fail("not_openable", f"{obj} cannot be opened or closed")
            target.is_open = action == "OPEN"
        elif action in ("TOGGLE_ON", "TOGGLE_OFF"):
            if not a.toggleable:
                return fail("not_toggleable", f"{obj} cannot be switched on or off")
            target.toggled_on = action == "TOGGLE_ON"
        elif action in ("PLACE_ON_TOP", "PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT"):
            if action == "PLACE_INSIDE":
                if not (a.container or a.openable):
                    return fail("not_a_container", f"nothing can be put inside {obj}")
                if a.openable and not target.is_open:
                    return fail("container_closed", f"{obj} is closed; OPEN it first")
            if action == "PLACE_NEAR_HEATING_ELEMENT" and not a.heat_source:
                return fail("not_a_heat_source", f"{obj} is not a heating element")
            relation = {"PLACE_ON_TOP": "on_top", "PLACE_INSIDE": "inside", "PLACE_NEAR_HEATING_ELEMENT": "near"}[action]
            held.relation, held.relation_target, self.held = relation, obj, None
        elif action == "RELEASE":
            held.relation, held.relation_target, self.held = "released", self.robot_at, None
        elif action == "SOAK_UNDER":
            if not a.fluid_source:
                return fail("not_a_fluid_source", f"{obj} gives no fluid to soak under")
            if a.toggleable and not target.toggled_on:
                return fail("source_off", f"{obj} is off; TOGGLE_ON it first")
            held.soaked = True
        elif action == "SOAK_INSIDE":
            if not (a.container or a.fluid_source):
                return fail("not_a_container", f"{obj} holds no fluid to soak in")
            if a.openable and not target.is_open:
                return fail("container_closed", f"{obj} is closed; OPEN it first")
            held.soaked = True
        elif action == "WIPE":
            target.wiped = True
        elif action == "CUT":
            if not held.affordances.slicer:
                return fail("held_not_slicer", f"cutting {obj} needs a held slicing tool, the robot holds {held.name}")
            target.cut = True
        return None, warnings


def world_for_objects(objects: Iterable[str], *, affordances: dict[str, Affordances] | None = None,
                      open: Iterable[str] = (), on: Iterable[str] = (), inside: dict[str, str] | None = None,
                      on_top: dict[str, str] | None = None, held: str | None = None) -> SymbolicWorld:
    """A world with these objects; affordances inferred from names unless given.

    ``open``/``on``: openables that start open / toggleables that start on; ``inside`` and
    ``on_top`` map an object to where it starts; ``held`` starts in the hand.
    """
    names = list(dict.fromkeys([*objects, *(inside or {}).values(), *(on_top or {}).values()]))
    world = SymbolicWorld(objects={n: WorldObject(name=n, affordances=(affordances or {}).get(n) or infer_affordances(n))
                                   for n in names})
    for n in open:
        world.objects[n].is_open = True
    for n in on:
        world.objects[n].toggled_on = True
    for rel, mapping in (("inside", inside), ("on_top", on_top)):
        for n, where in (mapping or {}).items():
            world.objects.setdefault(n, WorldObject(name=n, affordances=infer_affordances(n)))
            world.objects[n].relation, world.objects[n].relation_target = rel, where
    if held:
        world.objects.setdefault(held, WorldObject(name=held, affordances=infer_affordances(held)))
        world.held, world.objects[held].relation = held, "held"
    return world


def _script_string_values(code: str) -> list[str]:
    return re.findall(r":?=\s*'([^']*)'", code) + re.findall(r':?=\s*"([^"]*)"', code)


def objects_in_tree(doc: BTDocument) -> list[str]:
    """Literal object names a tree can hand to PAL actions (obj literals, Script/SetBlackboard/SubTree values)."""
    names: list[str] = []
    for tree in doc.trees:
        for _, node in iter_nodes(tree):
            if pal_action_of(node) and node.attrs.get("obj") and not variables_in(node.attrs["obj"]):
                names.append(node.attrs["obj"].strip())
            elif node.tag == "Script":
                names.extend(_script_string_values(node.attrs.get("code", "")))
            elif node.tag == "SetBlackboard" and node.attrs.get("value") and not variables_in(node.attrs["value"]):
                names.append(node.attrs["value"].strip())
            elif node.tag == "SubTree":
                names.extend(v.strip() for k, v in node.attrs.items()
                             if k not in ("ID", "name", "_autoremap") and v.strip() and not variables_in(v))
    return list(dict.fromkeys(n for n in names if n))


def world_for_tree(xml: str | bytes, **kwargs) -> SymbolicWorld:
    """``world_for_objects`` over every object the tree mentions (plus ``kwargs``' objects)."""
    return world_for_objects(objects_in_tree(parse_bt_xml(xml)), **kwargs)


class ActionRecord(BaseModel):
    action: str
    obj: str | None = None
    path: str
    name: str | None = None
    status: str  # SUCCESS | FAILURE
    reason: str = ""  # violation code, "injected_failure" or ""


class ExecutionResult(BaseModel):
    status: str  # SUCCESS | FAILURE
    trace: list[ActionRecord] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    ticks: int = 0
    final_world: SymbolicWorld | None = None
    injected: list[str] = Field(default_factory=list)  # fail_once selectors that fired

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


def execute_symbolic(xml: str | bytes, world: SymbolicWorld | None = None, *,
                     fail_once: set[str] | str | None = None, max_ticks: int = 50,
                     max_actions: int = 500) -> ExecutionResult:
    """Tick the tree in BT.CPP against a copy of ``world`` (default: ``world_for_tree(xml)``)."""
    try:
        doc = parse_bt_xml(xml)
    except BTParseError as exc:
        return ExecutionResult(status="FAILURE", violations=[Violation(code="load_error", message=str(exc), action="")])
    refusals = _refusals(doc)
    if refusals:
        return ExecutionResult(status="FAILURE", violations=refusals)
    world = (world or world_for_objects(objects_in_tree(doc))).model_copy(deep=True)
    pending = {fail_once} if isinstance(fail_once, str) else set(fail_once or ())
    result = ExecutionResult(status="FAILURE", final_world=world)

    def on_action(call: LeafCall) -> bool:
        if len(result.trace) >= max_actions:
            if not any(v.code == "action_budget_exceeded" for v in result.violations):
                result.violations.append(Violation(code="action_budget_exceeded", action=call.action, path=call.path,
                                                   message=f"more than {max_actions} actions ticked"))
            return False
        record = ActionRecord(action=call.action, obj=call.obj, path=call.path, name=call.name, status="FAILURE")
        result.trace.append(record)
        hit = next((s for s in sorted(pending) if s in (call.action, call.path, call.name)), None)
        if hit is not None:
            pending.discard(hit)
            result.injected.append(hit)
            record.reason = "injected_failure"
            return False
        if call.unbound:
            violation = Violation(code="unbound_variable", action=call.action, path=call.path,
                                  message=f"{{{call.unbound}}} has no blackboard entry when {call.action} runs")
        else:
            violation, warnings = world.apply(call.action, call.obj)
            result.warnings.extend(f"{call.path}: {w}" for w in warnings)
        if violation is not None:
            violation.path = call.path
            result.violations.append(violation)
            record.reason = violation.code
            return False
        record.status = "SUCCESS"
        return True

    run = run_in_btcpp(xml, on_action, max_ticks=max_ticks)
    result.ticks = run.ticks
    if run.status == "ERROR":
        result.violations.append(Violation(code="load_error", message=run.error, action=""))
    elif run.status == "RUNNING":
        result.violations.append(Violation(code="max_ticks_exceeded", action="",
                                           message=f"still RUNNING after {max_ticks} ticks"))
    result.status = "SUCCESS" if run.status == "SUCCESS" else "FAILURE"
    return result


def guarded_action_paths(xml: str | bytes) -> list[str]:
    """Paths of PAL actions with a recovery: under a RetryUntilSuccessful, or in a non-last Fallback branch.

    These are the steps at which ``fail_once`` should still let the tree reach SUCCESS.
    """
    doc = parse_bt_xml(xml)
    out: list[str] = []

    def walk(node: BTNode, path: str, guarded: bool) -> None:
        if pal_action_of(node) and guarded:
            out.append(path)
        retries = node.attrs.get("num_attempts", "").strip()
        for i, child in enumerate(node.children):
            g = guarded or node.tag == "RetryUntilSuccessful" and retries.isdigit() and int(retries) > 1 \
                or node.tag in ("Fallback", "ReactiveFallback") and i < len(node.children) - 1
            walk(child, f"{path}/{node_label(child)}[{i}]", g)

    for tree in doc.trees:
        walk(tree.root, f"{tree.id}/{node_label(tree.root)}", False)
    return out
