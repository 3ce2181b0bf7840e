"""Reading a tree the way a reviewer does: its PAL actions in execution order, with objects resolved.

Used by the offline critic and scorer. Tolerant on purpose (drafts are not canonical yet):
``<Action ID="X">`` and compact ``<X/>`` leaves, ``<SubTree>`` calls expanded with their port
remapping, ``{var}`` resolved through ``Script`` assignments. Fallback recovery branches are read
only in their first child after any guard conditions (the nominal path); retries do not repeat actions.
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


class ReadAction(BaseModel):
    action: str  # the id as written (may be non-PAL, e.g. PickUp)
    obj: Optional[str] = None
    attrs: dict[str, str] = {}

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
    _walk(trees[main_id], trees, {}, reading, depth=0, stack=(main_id,))
    return reading


def _is_guard(el) -> bool:
    """A guard condition (``<Condition ID="IsOpen">`` or compact ``<IsOpen/>``), or an Inverter over one."""
    kids = [c for c in el if isinstance(c.tag, str)]
    leaf = kids[0] if el.tag == "Inverter" and len(kids) == 1 else el
    return leaf.tag == "Condition" or leaf.tag in CONDITIONS


def _inside_models(el) -> bool:
    return any(a.tag == "TreeNodesModel" for a in el.iterancestors())


def _resolve(value: Optional[str], scope: dict[str, str]) -> Optional[str]:
    if value is None:
        return None
    m = _VAR.match(value.strip())
    return scope.get(m.group(1).strip(), value) if m else value


def _walk(el, trees, scope: dict[str, str], reading: TreeReading, depth: int, stack: tuple[str, ...]) -> None:
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
            _walk(trees[sub_id], trees, inner, reading, depth + 1, stack + (sub_id,))
        return
    if tag == "BehaviorTree":
        for c in children:
            _walk(c, trees, scope, reading, depth, stack)
        return
    is_action = (tag == "Action") or (tag not in _CONTROL and tag != "Condition" and tag not in CONDITIONS)
    if is_action:
        action = el.get("ID") if tag == "Action" else tag
        reading.actions.append(ReadAction(action=action or "?", obj=_resolve(el.get("obj"), scope),
                                          attrs=dict(el.attrib)))
        return
    reading.control_nodes += 1
    reading.retries += tag in ("RetryUntilSuccessful", "Repeat")
    if tag in ("Fallback", "ReactiveFallback"):
        reading.fallbacks += 1
        # The nominal branch; the rest is recovery. Leading guards only skip a step already done.
        nominal = next((i for i, c in enumerate(children) if not _is_guard(c)), len(children))
        children = children[nominal:nominal + 1]
    for c in children:
        _walk(c, trees, scope, reading, depth + 1, stack)
