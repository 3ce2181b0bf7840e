"""Deterministic tree transforms: robustness (agent D), subtree extraction (agent E), node ids (F).

The offline agents use these directly; hosted agents do the same job by prompting and their
result is checked by the same conformance / BT.CPP / executor gates.

* ``add_robustness(doc)`` — every PAL action but RELEASE that has no recovery yet (not already
  under a ``RetryUntilSuccessful`` or ``Fallback``) is wrapped in
  ``<RetryUntilSuccessful num_attempts="3">``. GRASP and the PLACE_* actions also get a recovery
  branch: ``Fallback(Retry(ACTION obj), Sequence(NAVIGATE_TO obj, ACTION obj))`` — "if the grasp
  keeps failing, re-approach and try once more". Actions whose effect a guard condition can see
  are skipped when it already holds: ``Fallback(IsReachable(x), Retry(NAVIGATE_TO x))``,
  ``Fallback(IsHolding(x), Retry(GRASP x), …)``, ``Fallback(IsOpen(x), Retry(OPEN x))``,
  ``Fallback(Inverter(IsOpen(x)), Retry(CLOSE x))``, and likewise ``IsToggledOn`` for TOGGLE_ON /
  TOGGLE_OFF — re-opening an open drawer is not a step. The re-approach inside a recovery branch
  stays unguarded (it must move the base). Running it twice changes nothing.
* ``extract_subtrees(doc) -> (doc, SubtreeMap)`` — in the main tree, each action "unit" (a PAL
  action, optionally wrapped by the guard/retry/fallback pattern above, all on one object)
  becomes a call ``<SubTree ID="T_Manipulate_Grasp" target="{cup}"/>`` of a standard subtree
  whose body is the unit with its object (in actions and guard conditions) replaced by the port
  ``{target}`` (RELEASE units take no port). Standard names: ``SUBTREE_NAMES``; a second,
  different body for the same action gets ``_2``, ``_3`` ….
  A ``<SubTree>`` model declaring the ``target`` port is added to ``TreeNodesModel``.
* ``assign_node_ids(xml) -> xml`` — ``name="node_01"``, ``node_02`` … on every node of every tree
  in document order (trees in document order, pre-order inside each; width grows past 99).
  Existing names are replaced, so the result depends only on the tree's shape: idempotent.

Public API: ``add_robustness``, ``extract_subtrees``, ``SubtreeMap``, ``SubtreeDef``,
``SubtreeUse``, ``SUBTREE_NAMES``, ``assign_node_ids``.
"""

from __future__ import annotations

from itertools import takewhile

from pydantic import BaseModel, Field

from .model import (BTDocument, BTNode, BehaviorTree, NodeModel, PortModel, condition_of, node_label, pal_action_of,
                    parse_bt_xml, to_bt_xml)

RETRY_ATTEMPTS = "3"
_RECOVERABLE = {"GRASP", "PLACE_ON_TOP", "PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT"}
# action → (condition that is true once the action is done, whether the guard is its negation)
_GUARDS = {"NAVIGATE_TO": ("IsReachable", False), "GRASP": ("IsHolding", False), "OPEN": ("IsOpen", False),
           "CLOSE": ("IsOpen", True), "TOGGLE_ON": ("IsToggledOn", False), "TOGGLE_OFF": ("IsToggledOn", True)}
SUBTREE_NAMES = {
    "NAVIGATE_TO": "T_Navigate",
    "GRASP": "T_Manipulate_Grasp",
    "PLACE_ON_TOP": "T_Manipulate_Place",
    "PLACE_INSIDE": "T_Manipulate_PlaceInside",
    "PLACE_NEAR_HEATING_ELEMENT": "T_Manipulate_PlaceNearHeat",
    "RELEASE": "T_Manipulate_Release",
    "OPEN": "T_Articulate_Open",
    "CLOSE": "T_Articulate_Close",
    "TOGGLE_ON": "T_Toggle_On",
    "TOGGLE_OFF": "T_Toggle_Off",
    "SOAK_UNDER": "T_Soak_Under",
    "SOAK_INSIDE": "T_Soak_Inside",
    "WIPE": "T_Clean_Wipe",
    "CUT": "T_Slice_Cut",
}
PORT = "target"


def _action(action: str, obj: str | None) -> BTNode:
    return BTNode(tag="Action", attrs={"ID": action, **({"obj": obj} if obj is not None else {})})


def _guard(action: str, obj: str | None) -> BTNode | None:
    if action not in _GUARDS or not obj:
        return None
    condition, negated = _GUARDS[action]
    check = BTNode(tag="Condition", attrs={"ID": condition, "obj": obj})
    return BTNode(tag="Inverter", children=[check]) if negated else check


def _harden(node: BTNode, guarded: bool) -> BTNode:
    action = pal_action_of(node)
    if action:
        if guarded or action == "RELEASE":
            return node
        obj = node.attrs.get("obj")
        branches = [BTNode(tag="RetryUntilSuccessful", attrs={"num_attempts": RETRY_ATTEMPTS}, children=[node])]
        if action in _RECOVERABLE and obj:
            branches.append(BTNode(tag="Sequence", children=[_action("NAVIGATE_TO", obj), _action(action, obj)]))
        if (guard := _guard(action, obj)) is not None:
            branches.insert(0, guard)
        return branches[0] if len(branches) == 1 else BTNode(tag="Fallback", children=branches)
    inner = guarded or node.tag in ("RetryUntilSuccessful", "Fallback", "ReactiveFallback")
    return node.model_copy(update={"children": [_harden(c, inner) for c in node.children]})


def add_robustness(doc: BTDocument) -> BTDocument:
    doc = doc.model_copy(deep=True)
    for tree in doc.trees:
        tree.root = _harden(tree.root, False)
    return doc


class SubtreeDef(BaseModel):
    id: str
    primary_action: str
    ports: list[str]


class SubtreeUse(BaseModel):
    subtree_id: str
    call_path: str  # path of the <SubTree> call in the new main tree
    replaced_path: str  # path of the replaced node in the input main tree
    replaced_actions: list[str]  # e.g. ["GRASP(obj={cup})", "NAVIGATE_TO(obj={cup})", …] in document order
    remapping: dict[str, str] = Field(default_factory=dict)  # port → value at the call site


class SubtreeMap(BaseModel):
    subtrees: list[SubtreeDef] = Field(default_factory=list)
    uses: list[SubtreeUse] = Field(default_factory=list)


def _pal_leaves(node: BTNode) -> list[BTNode]:
    found = [node] if pal_action_of(node) else []
    for c in node.children:
        found.extend(_pal_leaves(c))
    return found


def _only_pal_structure(node: BTNode) -> bool:
    if pal_action_of(node):
        return not node.children
    return node.tag in ("Sequence", "RetryUntilSuccessful", "Fallback") and bool(node.children) \
        and all(_only_pal_structure(c) for c in node.children)


def _unit(node: BTNode) -> tuple[str, str | None] | None:
    """(primary action, obj) if ``node`` is one action unit; else None."""
    action = pal_action_of(node)
    if action:
        return action, node.attrs.get("obj")
    if node.tag == "RetryUntilSuccessful" and len(node.children) == 1:
        return _unit(node.children[0])
    if node.tag == "Fallback" and len(node.children) >= 2:
        guards = list(takewhile(_is_guard, node.children))
        rest = node.children[len(guards):]
        first = _unit(rest[0]) if rest else None
        if first and all(_guard_condition(g).attrs.get("obj") == first[1] for g in guards) and all(
                _only_pal_structure(c) and all(leaf.attrs.get("obj") == first[1] for leaf in _pal_leaves(c))
                for c in rest[1:]):
            return first
    return None


def _guard_condition(node: BTNode) -> BTNode:
    return node.children[0] if node.tag == "Inverter" else node


def _is_guard(node: BTNode) -> bool:
    """A guard condition, or an Inverter over one."""
    return bool(condition_of(node) or node.tag == "Inverter" and len(node.children) == 1
                and condition_of(node.children[0]))


def _parametrize(node: BTNode, obj: str | None) -> BTNode:
    attrs = {k: v for k, v in node.attrs.items() if k != "name"}
    if (pal_action_of(node) or condition_of(node)) and obj is not None and attrs.get("obj") == obj:
        attrs["obj"] = "{" + PORT + "}"
    return BTNode(tag=node.tag, attrs=attrs, children=[_parametrize(c, obj) for c in node.children])


def extract_subtrees(doc: BTDocument) -> tuple[BTDocument, SubtreeMap]:
    doc = doc.model_copy(deep=True)
    mapping = SubtreeMap()
    main = doc.main_tree
    if main is None:
        return doc, mapping

    def subtree_for(action: str, body: BTNode) -> str:
        base = SUBTREE_NAMES[action]
        for k in range(1, 100):
            tree_id = base if k == 1 else f"{base}_{k}"
            existing = doc.tree(tree_id)
            if existing is None:
                doc.trees.append(BehaviorTree(id=tree_id, root=body))
                ports = [] if action == "RELEASE" else [PORT]
                mapping.subtrees.append(SubtreeDef(id=tree_id, primary_action=action, ports=ports))
                if not doc.model(tree_id):
                    doc.node_models.append(NodeModel(kind="SubTree", id=tree_id, ports=[
                        PortModel(name=p, description=f"object {action} acts on") for p in ports]))
                return tree_id
            if existing.root == body:
                return tree_id
        raise ValueError(f"too many variants of {base}")

    def rewrite(node: BTNode, old_path: str, new_parent: str | None, index: int | None) -> BTNode:
        unit = _unit(node)
        if unit is not None:
            action, obj = unit
            tree_id = subtree_for(action, _parametrize(node, obj))
            remap = {PORT: obj} if action != "RELEASE" and obj is not None else {}
            call = BTNode(tag="SubTree", attrs={"ID": tree_id, **remap})
            label = node_label(call) + (f"[{index}]" if index is not None else "")
            mapping.uses.append(SubtreeUse(
                subtree_id=tree_id, call_path=f"{new_parent}/{label}" if new_parent else f"{main.id}/{label}",
                replaced_path=old_path, remapping=remap,
                replaced_actions=[f"{pal_action_of(leaf)}({', '.join(f'{k}={v}' for k, v in leaf.attrs.items() if k not in ('ID', 'name'))})"
                                  for leaf in _pal_leaves(node)]))
            return call
        own = f"{new_parent}/{node_label(node)}[{index}]" if new_parent else f"{main.id}/{node_label(node)}"
        children = [rewrite(c, f"{old_path}/{node_label(c)}[{i}]", own, i) for i, c in enumerate(node.children)]
        return node.model_copy(update={"children": children})

    main.root = rewrite(main.root, f"{main.id}/{node_label(main.root)}", None, None)
    return doc, mapping


def assign_node_ids(xml: str | bytes) -> str:
    doc = parse_bt_xml(xml)
    nodes: list[BTNode] = []

    def collect(node: BTNode) -> None:
        nodes.append(node)
        for c in node.children:
            collect(c)

    for tree in doc.trees:
        collect(tree.root)
    width = max(2, len(str(len(nodes))))
    for k, node in enumerate(nodes, start=1):
        node.attrs["name"] = f"node_{k:0{width}d}"
    return to_bt_xml(doc)
