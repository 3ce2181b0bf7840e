"""The offline teacher's PAL planner: parsed goals → phases of PAL v1 steps → draft BT XML.

It tracks the symbolic state a plan goes through (held object, where the robot is, which
containers are open, which appliances are on) so the draft respects the PAL preconditions:
NAVIGATE_TO before manipulating, an empty hand for GRASP / OPEN / CLOSE / TOGGLE_*, containers
opened (and fluid sources switched on) *before* the object is grasped.
"""

from __future__ import annotations

from typing import Optional

from lxml import etree
from pydantic import BaseModel

from teacher_assets.bt.pal import PAL_V1, infer_affordances

from .instruction_parser import Goal, ParsedInstruction


class PlanStep(BaseModel):
    primitive: str
    obj: Optional[str] = None  # None only for RELEASE


class Phase(BaseModel):
    name: str
    steps: list[PlanStep]


class _PlanState:
    def __init__(self, object_states: dict[str, str]):
        self.held: Optional[str] = None
        self.at: Optional[str] = None
        self.opened = {k for k, v in object_states.items() if v == "open"}
        self.switched_on = {k for k, v in object_states.items() if v == "on"}


def plan_task(parsed: ParsedInstruction, object_states: Optional[dict[str, str]] = None) -> list[Phase]:
    """Phases in instruction order; empty when the instruction has no PAL goals."""
    state = _PlanState(object_states or {})
    # What must happen with an empty hand before an object is picked up, by object.
    before_grasp: dict[str, list[PlanStep]] = {}
    for g in parsed.goals:
        prep = before_grasp.setdefault(_held_object(g) or "", [])
        # the destination of PLACE_INSIDE, and whatever the object is taken out of, must be open
        for container in (g.target if g.kind == "place_inside" else None, g.source):
            if container and infer_affordances(container).openable:
                prep.append(PlanStep(primitive="OPEN", obj=container))
        if g.kind == "soak_under" and g.target and infer_affordances(g.target).toggleable:
            prep.append(PlanStep(primitive="TOGGLE_ON", obj=g.target))

    phases: list[Phase] = []

    def emit(name: str, steps: list[PlanStep]) -> None:
        if steps:
            phases.append(Phase(name=name, steps=steps))

    def at(obj: str, steps: list[PlanStep]) -> None:
        if state.at != obj:
            steps.append(PlanStep(primitive="NAVIGATE_TO", obj=obj))
            state.at = obj

    def empty_hand(reason: str) -> None:
        if state.held:
            emit(f"set_down_{state.held}_to_{reason}", [PlanStep(primitive="RELEASE")])
            state.held = None

    def acquire(obj: str) -> None:
        if state.held == obj:
            return
        empty_hand(f"grasp_{obj}")
        for step in before_grasp.pop(obj, []):
            if (step.primitive == "OPEN" and step.obj in state.opened) or (
                    step.primitive == "TOGGLE_ON" and step.obj in state.switched_on):
                continue
            prep: list[PlanStep] = []
            at(step.obj, prep)
            prep.append(step)
            (state.opened if step.primitive == "OPEN" else state.switched_on).add(step.obj)
            emit(f"{step.primitive.lower()}_{step.obj}", prep)
        steps: list[PlanStep] = []
        at(obj, steps)
        steps.append(PlanStep(primitive="GRASP", obj=obj))
        state.held = obj
        emit(f"grasp_{obj}", steps)

    def act_on(primitive: str, obj: str, name: str) -> None:
        steps: list[PlanStep] = []
        at(obj, steps)
        steps.append(PlanStep(primitive=primitive, obj=obj))
        emit(name, steps)

    for g in parsed.goals:
        if g.kind == "navigate":
            emit(f"go_to_{g.obj}", [PlanStep(primitive="NAVIGATE_TO", obj=g.obj)])
            state.at = g.obj
        elif g.kind == "pick":
            acquire(g.obj)
        elif g.kind in ("place_on_top", "place_inside", "place_near_heating"):
            primitive = {"place_on_top": "PLACE_ON_TOP", "place_inside": "PLACE_INSIDE",
                         "place_near_heating": "PLACE_NEAR_HEATING_ELEMENT"}[g.kind]
            acquire(g.obj)
            act_on(primitive, g.target, f"{primitive.lower()}_{g.target}")
            state.held = None
        elif g.kind in ("open", "close", "toggle_on", "toggle_off"):
            primitive = g.kind.upper()
            if (primitive == "OPEN" and g.obj in state.opened) or (primitive == "TOGGLE_ON" and g.obj in state.switched_on):
                continue  # already true (opened for an earlier grasp, or the scene report says so)
            empty_hand(f"{g.kind}_{g.obj}")
            act_on(primitive, g.obj, f"{g.kind}_{g.obj}")
            {"OPEN": state.opened.add, "CLOSE": state.opened.discard, "TOGGLE_ON": state.switched_on.add,
             "TOGGLE_OFF": state.switched_on.discard}[primitive](g.obj)
        elif g.kind in ("soak_under", "soak_inside"):
            acquire(g.obj)
            act_on(g.kind.upper(), g.target, f"{g.kind}_{g.target}")
        elif g.kind in ("wipe", "cut"):
            acquire(g.tool)
            act_on(g.kind.upper(), g.target, f"{g.kind}_{g.target}")
        elif g.kind == "release":
            acquire(g.obj)
            emit(f"release_{g.obj}", [PlanStep(primitive="RELEASE")])
            state.held = None
    return phases


def _held_object(g: Goal) -> Optional[str]:
    return g.tool if g.kind in ("wipe", "cut") else None if g.kind in ("navigate", "open", "close", "toggle_on", "toggle_off") else g.obj


def steps_of(phases: list[Phase]) -> list[PlanStep]:
    return [s for p in phases for s in p.steps]


def draft_xml(phases: list[Phase], tree_id: str = "MainTree") -> str:
    """The architect's draft: a sequence of phase sequences of PAL actions (no guards yet)."""
    root = etree.Element("root", BTCPP_format="4", main_tree_to_execute=tree_id)
    tree = etree.SubElement(root, "BehaviorTree", ID=tree_id)
    task = etree.SubElement(tree, "Sequence", name="task")
    for phase in phases:
        seq = etree.SubElement(task, "Sequence", name=phase.name)
        for step in phase.steps:
            attrs = {"ID": step.primitive}
            if step.obj is not None and PAL_V1.get(step.primitive, PAL_V1["GRASP"]).ports:
                attrs["obj"] = step.obj
            etree.SubElement(seq, "Action", **attrs)
    return etree.tostring(root, pretty_print=True, encoding="unicode")
