"""Reading a tree the way a reviewer does: its PAL actions in execution order, with objects resolved.

Used by the offline critic and scorer. Tolerant on purpose (drafts are not canonical yet):
``<Action ID="X">`` and compact ``<X/>`` leaves, ``<SubTree>`` calls expanded with their port
remapping, ``{var}`` resolved through ``Script`` assignments. Fallback recovery branches are read
only in their first child after any guard conditions (the nominal path); retries do not repeat actions.
The leading guard conditions of a Fallback (``Fallback(IsOpen(drawer), OPEN(drawer))``) are kept
on each action of its nominal branch (``ReadAction.guards``): whoever plays the path asks them
once, when the branch is reached, and skips the branch when one holds.
"""

from __future__ import annotations

import re
from typing import Optional

from lxml import etree
from pydantic import BaseModel

from teacher_assets.bt.conditions import CONDITIONS
from teacher_assets.bt.pal import PAL_V1

_CONTROL = {"Sequence", "SequenceWithMemory", "ReactiveSequence", "Fallback", "ReactiveFallback", "Parallel",
            "ParallelAll", "IfThenElse", "WhileDoElse", "RetryUntilSuccessful", "Repeat", "Inverter", "ForceSuccess",
            "ForceFailure", "KeepRunningUntilFailure", "RunOnce", "BehaviorTree", "SubTree", "Script",
            "ScriptCondition", "SetBlackboard", "AlwaysSuccess", "AlwaysFailure", "root", "TreeNodesModel"}
_ASSIGN = re.compile(r"([A-Za-z_][\w]*)\s*:=\s*'([^']*)'")
_VAR = re.compile(r"^\{([^{}]+)\}$")


class ReadGuard(BaseModel):
    """One guard condition of a Fallback; the branch after it runs only when none of its guards holds."""

    fallback: int  # which Fallback it guards (numbered in reading order): its guards are asked together, once
    condition: str  # IsHolding | IsOpen | IsReachable | IsToggledOn (or whatever the tree wrote)
    obj: Optional[str] = None
    negated: bool = False  # an Inverter over the condition


class ReadAction(BaseModel):
    action: str  # the id as written (may be non-PAL, e.g. PickUp)
    obj: Optional[str] = None
    attrs: dict[str, str] = {}
    guards: list[ReadGuard] = []  # of the Fallbacks whose nominal branch holds this action, outermost first

    @property
    def is_pal(self) -> bool:
        return self.action in PAL_V1


class TreeReading(BaseModel):
    well_formed: bool
    error: str = ""
    actions: list[ReadAction] = []
    depth: int = 0
    control_nodes: int = 0
    retries: int = 0
    fallbacks: int = 0
    subtree_calls: int = 0
    literals: list[str] = []  # every literal attribute / script value (objects the tree mentions)


def read_tree(xml: str) -> TreeReading:
    try:
        root = etree.fromstring(xml.encode("utf-8"))
    except etree.XMLSyntaxError as exc:
        return TreeReading(well_formed=False, error=str(exc))
    trees = {t.get("ID"): t for t in root.iter("BehaviorTree")}
    main_id = root.get("main_tree_to_execute") or next(iter(trees), None)
    reading = TreeReading(well_formed=True)
    if main_id not in trees:
        reading.error = f"main tree {main_id!r} not found"
        return reading
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag == "TreeNodesModel" or _inside_models(el):
            continue
        for key, value in el.attrib.items():
            if key not in ("ID", "name") and not _VAR.match(value):
                reading.literals.append(value)
        if el.tag == "Script":
            reading.literals.extend(v for _, v in _ASSIGN.findall(el.get("code", "")))
    _walk(trees[main_id], trees, {}, reading, depth=0, stack=(main_id,), guards=())
    return reading


def guard_leaf(el):
    """The condition element of a guard (``<Condition ID="IsOpen">``, compact ``<IsOpen/>``, or an
    Inverter over one), else None."""
    kids = [c for c in el if isinstance(c.tag, str)]
    leaf = kids[0] if el.tag == "Inverter" and len(kids) == 1 else el
    return leaf if leaf.tag == "Condition" or leaf.tag in CONDITIONS else None


def _inside_models(el) -> bool:
    return any(a.tag == "TreeNodesModel" for a in el.iterancestors())


def _resolve(value: Optional[str], scope: dict[str, str]) -> Optional[str]:
    if value is None:
        return None
    m = _VAR.match(value.strip())
    return scope.get(m.group(1).strip(), value) if m else value


def _walk(el, trees, scope: dict[str, str], reading: TreeReading, depth: int, stack: tuple[str, ...],
          guards: tuple[ReadGuard, ...]) -> None:
    children = [c for c in el if isinstance(c.tag, str)]
    reading.depth = max(reading.depth, depth)
    tag = el.tag
    if tag == "Script":
        scope.update(dict(_ASSIGN.findall(el.get("code", ""))))
        return
    if tag == "SubTree":
        reading.subtree_calls += 1
        sub_id = el.get("ID")
        if sub_id in trees and sub_id not in stack:
            inner = {k: _resolve(v, scope) for k, v in el.attrib.items() if k not in ("ID", "name")}
            if el.get("_autoremap") == "true":
                inner = {**scope, **inner}
            _walk(trees[sub_id], trees, inner, reading, depth + 1, stack + (sub_id,), guards)
        return
    if tag == "BehaviorTree":
        for c in children:
            _walk(c, trees, scope, reading, depth, stack, guards)
        return
    is_action = (tag == "Action") or (tag not in _CONTROL and tag != "Condition" and tag not in CONDITIONS)
    if is_action:
        action = el.get("ID") if tag == "Action" else tag
        reading.actions.append(ReadAction(action=action or "?", obj=_resolve(el.get("obj"), scope),
                                          attrs=dict(el.attrib), guards=list(guards)))
        return
    reading.control_nodes += 1
    reading.retries += tag in ("RetryUntilSuccessful", "Repeat")
    if tag in ("Fallback", "ReactiveFallback"):
        reading.fallbacks += 1
        # The nominal branch; the rest is recovery. Leading guards only skip a step already done.
        nominal = next((i for i, c in enumerate(children) if guard_leaf(c) is None), len(children))
        fallback = reading.fallbacks
        for c in children[:nominal]:
            leaf = guard_leaf(c)
            guards += (ReadGuard(fallback=fallback, condition=leaf.get("ID") if leaf.tag == "Condition" else leaf.tag,
                                 obj=_resolve(leaf.get("obj"), scope), negated=c.tag == "Inverter"),)
        children = children[nominal:nominal + 1]
    for c in children:
        _walk(c, trees, scope, reading, depth + 1, stack, guards)
