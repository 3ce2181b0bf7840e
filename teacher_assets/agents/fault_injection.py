"""Fault injection: mutate a correct PAL tree into one with a given error of the taxonomy.

``inject_fault(xml, kind, scene_objects=..., seed=...)`` returns the mutated tree, or ``None``
when the tree offers no place for that kind (no PLACE_* to change the relation of, no second
object to confuse it with …). It works on trees without SubTree calls — the architect's drafts the
critic reviews, and hardened trees before subtree extraction — and edits the nominal path (the
first child of each Fallback after its guard conditions), the path the critic and scorer read. A
step moved, dropped or given another object takes its guards and recovery branch along
(``Fallback(IsHolding(cup), GRASP cup, …)`` becomes ``Fallback(IsHolding(mug), GRASP mug, …)``),
so the fault is the one intended.

Kinds (``schemas.ErrorLabel``): ``hallucinated_object`` (an object renamed to one the scene lacks,
e.g. a block placed on "left"), ``wrong_order`` (two adjacent steps swapped, each with its
approach), ``missing_step`` (a step and its approach dropped — preferably a set-down, so a lid
comes off and is never put down), ``affordance_violation`` (an action on an object that does not
afford it), ``extra_step`` (an unrequested step that undoes or changes the outcome),
``wrong_relation`` (PLACE_INSIDE ↔ PLACE_ON_TOP, near-heating → on top), ``wrong_object``,
``hallucinated_action`` (a non-PAL name), ``arity_error`` (an action without its ``obj``),
``parse_error`` (a reply cut short). ``infeasible_task`` is a property of the instruction, not of a
tree, so it is not injected.

The offline architect uses it for its deliberate mistakes, the tests and
``bench/bench_vocabulary.py`` to measure what the critic catches.
"""

from __future__ import annotations

import random
from typing import Callable, Optional, Sequence

from lxml import etree

from teacher_assets.bt.pal import PAL_V1, infer_affordances
from teacher_assets.bt.world import TOOL_USES

from .tree_reading import guard_leaf

INJECTABLE = ("hallucinated_object", "wrong_order", "missing_step", "affordance_violation", "extra_step",
              "wrong_relation", "wrong_object", "hallucinated_action", "arity_error", "parse_error")
_PLACES = ("PLACE_ON_TOP", "PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT")
_WRAPPERS = {"RetryUntilSuccessful", "Repeat", "Fallback", "ReactiveFallback", "Inverter", "ForceSuccess",
             "ForceFailure", "RunOnce", "KeepRunningUntilFailure"}
_MADE_UP = ("glass_vase", "blue_mug", "toy_robot", "wooden_spoon")
_NON_PAL = {"GRASP": "PickUp", "NAVIGATE_TO": "MoveTo", "PLACE_ON_TOP": "PutOn", "PLACE_INSIDE": "PutIn",
            "OPEN": "OpenDoor", "CLOSE": "CloseDoor", "TOGGLE_ON": "SwitchOn", "TOGGLE_OFF": "SwitchOff",
            "RELEASE": "LetGo"}
# Which affordance each primitive needs of its obj (the symbolic world's rules, by name).
_NEEDS = {"GRASP": "graspable", "OPEN": "openable", "CLOSE": "openable", "TOGGLE_ON": "toggleable",
          "TOGGLE_OFF": "toggleable", "PLACE_INSIDE": "container", "SOAK_UNDER": "fluid_source",
          "PLACE_NEAR_HEATING_ELEMENT": "heat_source", **{action: use.target for action, use in TOOL_USES.items()}}


def _affords(name: str, need: str) -> bool:
    aff = infer_affordances(name)
    return bool(getattr(aff, need)) or (need == "container" and aff.openable)


class _Tree:
    """The tree's nominal PAL actions, each with the element that carries it in its parent Sequence."""

    def __init__(self, xml: str):
        self.root = etree.fromstring(xml.encode("utf-8"))
        trees = {t.get("ID"): t for t in self.root.iter("BehaviorTree")}
        self.main = trees[self.root.get("main_tree_to_execute") or next(iter(trees))]
        self.actions: list = []
        self._walk(self.main)

    def _walk(self, el) -> None:
        children = [c for c in el if isinstance(c.tag, str)]
        if el.tag == "Action":
            self.actions.append(el)
            return
        if el.tag in ("Fallback", "ReactiveFallback"):
            children = [c for c in children if guard_leaf(c) is None][:1]
        for c in children:
            self._walk(c)

    @staticmethod
    def unit_element(action):
        """The outermost wrapper (guards, retry, fallback) that holds only this action on its nominal path."""
        el = action
        while el.getparent() is not None and el.getparent().tag in _WRAPPERS:
            parent = el.getparent()
            if parent.tag in ("Fallback", "ReactiveFallback") and \
                    next(c for c in parent if isinstance(c.tag, str) and guard_leaf(c) is None) is not el:
                break
            el = parent
        return el

    def retarget(self, action, obj: str) -> None:
        """Give the action another object, and its unit's guards and recovery branch with it."""
        old = action.get("obj")
        for el in self.unit_element(action).iter():
            if isinstance(el.tag, str) and (el.tag == "Action" or guard_leaf(el) is el) and el.get("obj") == old:
                el.set("obj", obj)

    def units(self) -> list[list]:
        """Key actions with the NAVIGATE_TO right before them (when it approaches the same object)."""
        units: list[list] = []
        for k, a in enumerate(self.actions):
            if a.get("ID") == "NAVIGATE_TO":
                continue
            prev = self.actions[k - 1] if k else None
            nav = prev is not None and prev.get("ID") == "NAVIGATE_TO" and prev.get("obj") == a.get("obj") \
                and a.get("obj") is not None
            units.append(([prev] if nav else []) + [a])
        return units

    def remove(self, action) -> None:
        el = self.unit_element(action)
        parent = el.getparent()
        parent.remove(el)
        while parent is not None and parent.tag == "Sequence" and not len(parent) and parent.getparent() is not None:
            grand = parent.getparent()
            grand.remove(parent)
            parent = grand

    def append_phase(self, name: str, steps: list[tuple[str, Optional[str]]]) -> None:
        top = next((c for c in self.main if isinstance(c.tag, str)), None)
        if top is None or top.tag not in ("Sequence", "SequenceWithMemory"):
            return
        phase = etree.SubElement(top, "Sequence", name=name)
        for primitive, obj in steps:
            etree.SubElement(phase, "Action", ID=primitive, **({"obj": obj} if obj else {}))

    def insert_phase_first(self, name: str, steps: list[tuple[str, Optional[str]]]) -> bool:
        top = next((c for c in self.main if isinstance(c.tag, str)), None)
        if top is None or top.tag not in ("Sequence", "SequenceWithMemory"):
            return False
        phase = etree.Element("Sequence", name=name)
        for primitive, obj in steps:
            etree.SubElement(phase, "Action", ID=primitive, **({"obj": obj} if obj else {}))
        top.insert(0, phase)
        return True

    def rename_everywhere(self, old: str, new: str) -> None:
        for el in self.root.iter():
            if isinstance(el.tag, str) and (el.tag == "Action" or guard_leaf(el) is el) and el.get("obj") == old:
                el.set("obj", new)

    def xml(self) -> str:
        return etree.tostring(self.root, pretty_print=True, encoding="unicode")


def inject_fault(xml: str, kind: str, *, scene_objects: Sequence[str] = (), seed: int = 0) -> Optional[str]:
    """``xml`` with one error of ``kind``; None when this tree has no place for it."""
    if kind not in INJECTABLE:
        raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(INJECTABLE)}")
    if kind == "parse_error":
        return xml[: xml.rfind("</BehaviorTree>")] if "</BehaviorTree>" in xml else None
    try:
        tree = _Tree(xml)
    except (etree.XMLSyntaxError, KeyError, StopIteration) as exc:
        raise ValueError(f"not a readable BehaviorTree document: {exc!r}") from None
    if tree.main.find(".//SubTree") is not None:
        return None
    rng = random.Random(seed)
    objects = list(dict.fromkeys([*scene_objects, *(a.get("obj") for a in tree.actions if a.get("obj"))]))
    changed = _INJECTORS[kind](tree, objects, rng)
    return tree.xml() if changed else None


def _hallucinate_object(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    candidates = [a for a in tree.actions if a.get("obj") and a.get("ID") != "NAVIGATE_TO"]
    if not candidates:
        return False
    places = [a for a in candidates if a.get("ID") in _PLACES]
    action = rng.choice(places or candidates)
    # A place word taken for an object ("on the left") or a plausible object the scene lacks.
    pool = (["left", "right_side"] if action.get("ID") in _PLACES else []) + [o for o in _MADE_UP if o not in objects]
    tree.rename_everywhere(action.get("obj"), rng.choice(pool))
    return True


def _swap_steps(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    units = tree.units()
    if len(units) < 2:
        return False
    k = rng.randrange(len(units) - 1)
    first, second = units[k], units[k + 1]
    anchor = tree.unit_element(first[0])
    for action in second:  # move the later unit (with its approach) in front of the earlier one
        el = tree.unit_element(action)
        old_parent = el.getparent()
        anchor.addprevious(el)
        if old_parent is not None and old_parent.tag == "Sequence" and not len(old_parent):
            old_parent.getparent().remove(old_parent)
    return True


def _drop_step(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    units = tree.units()
    if not units:
        return False
    set_downs = [u for u in units if u[-1].get("ID") in (*_PLACES, "RELEASE")]
    unit = rng.choice(set_downs or units)
    for action in unit:
        tree.remove(action)
    return True


def _violate_affordance(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    units = tree.units()
    grasped = {a.get("obj") for a in tree.actions if a.get("ID") == "GRASP"}

    def substitute(primitive: str) -> bool:
        unit = next((u for u in units if u[-1].get("ID") == primitive), None)
        if unit is None:
            return False
        # Not the object in hand for a step that acts on something else with it (that is same_object).
        taken = grasped if PAL_V1[primitive].hand == "holding" else set()
        wrong = [o for o in objects if not _affords(o, _NEEDS[primitive]) and o != unit[-1].get("obj") and o not in taken]
        if not wrong:
            return False
        obj = rng.choice(wrong)
        for action in unit:
            tree.retarget(action, obj)
        return True

    for primitive in ("TOGGLE_ON", "TOGGLE_OFF"):
        if substitute(primitive):
            return True
    on_top = next((u for u in units if u[-1].get("ID") == "PLACE_ON_TOP" and not _affords(u[-1].get("obj"), "container")),
                  None)
    if on_top is not None:  # into something that is no container
        on_top[-1].set("ID", "PLACE_INSIDE")
        return True
    for primitive in ("WIPE", "CUT", "GRASP", "PLACE_INSIDE", "CLOSE", "OPEN", "SOAK_UNDER", "PLACE_NEAR_HEATING_ELEMENT"):
        if substitute(primitive):
            return True
    rigid = [o for o in objects if not _affords(o, "openable")]
    return bool(rigid) and tree.insert_phase_first("open_it", [("NAVIGATE_TO", (o := rng.choice(rigid))), ("OPEN", o)])


def _add_step(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    held = None
    for a in tree.actions:
        if a.get("ID") == "GRASP":
            held = a.get("obj")
        elif a.get("ID") in (*_PLACES, "RELEASE"):
            held = None
    if held:  # let go of what the task wants held
        tree.append_phase("extra", [("RELEASE", None)])
        return True
    used = [a.get("obj") for a in tree.actions if a.get("obj")]
    candidates = list(dict.fromkeys(used + objects))
    graspable = [o for o in candidates if _affords(o, "graspable")]
    switched_on = [a.get("obj") for a in tree.actions if a.get("ID") == "TOGGLE_ON"]
    toggleable = [o for o in candidates if _affords(o, "toggleable")]
    openable = [o for o in candidates if _affords(o, "openable")]
    if graspable:  # pick up again what the task handled (undoing a placement), else any object
        step = ("GRASP", graspable[0])
    elif switched_on:  # switch off what the task switched on
        step = ("TOGGLE_OFF", rng.choice(switched_on))
    elif toggleable:
        step = ("TOGGLE_ON", rng.choice(toggleable))
    elif openable:
        step = ("OPEN", rng.choice(openable))
    else:
        return False
    tree.append_phase("extra", [("NAVIGATE_TO", step[1]), step])
    return True


def _change_relation(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    places = [a for a in tree.actions if a.get("ID") in _PLACES]
    rng.shuffle(places)
    for a in places:
        target = a.get("obj")
        if a.get("ID") in ("PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT"):
            a.set("ID", "PLACE_ON_TOP")
            return True
        if _affords(target, "container"):
            a.set("ID", "PLACE_INSIDE")
            return True
    return False


def _other_object(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    units = [u for u in tree.units() if u[-1].get("obj")]
    rng.shuffle(units)
    used = {a.get("obj") for a in tree.actions}
    for unit in units:
        primitive, obj = unit[-1].get("ID"), unit[-1].get("obj")
        need = _NEEDS.get(primitive, "graspable" if PAL_V1[primitive].hand == "empty" else None)
        others = [o for o in objects if o not in used and (need is None or _affords(o, need))]
        if others:
            new = rng.choice(others)
            for action in unit:
                tree.retarget(action, new)
            return True
    return False


def _non_pal_name(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    options = [a for a in tree.actions if a.get("ID") in _NON_PAL]
    if not options:
        return False
    a = rng.choice(options)
    a.set("ID", _NON_PAL[a.get("ID")])
    return True


def _drop_obj(tree: _Tree, objects: list[str], rng: random.Random) -> bool:
    options = [a for a in tree.actions if a.get("obj") and a.get("ID") != "NAVIGATE_TO"]
    if not options:
        return False
    del rng.choice(options).attrib["obj"]
    return True


_INJECTORS: dict[str, Callable[[_Tree, list[str], random.Random], bool]] = {
    "hallucinated_object": _hallucinate_object, "wrong_order": _swap_steps, "missing_step": _drop_step,
    "affordance_violation": _violate_affordance, "extra_step": _add_step, "wrong_relation": _change_relation,
    "wrong_object": _other_object, "hallucinated_action": _non_pal_name, "arity_error": _drop_obj,
}
