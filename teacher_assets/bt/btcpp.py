"""Load and tick trees in BehaviorTree.CPP v4 itself (the ``behaviortreepy`` bindings).

``load_in_btcpp(xml) -> BTLoadResult`` registers the 14 PAL actions (as actions) and the guard
conditions of ``conditions.py`` (as conditions) in a fresh ``BehaviorTreeFactory`` and builds the
tree with ``create_tree_from_text``: unknown nodes, missing subtrees, a bad
``main_tree_to_execute``, malformed scripts, wrong child counts … are reported in
BehaviorTree.CPP's own words.

Port shim (why): behaviortreepy 0.1.4 registers Python nodes with an empty ``providedPorts()``
and has no way to declare ports, so BT.CPP would refuse ``obj="…"`` on any Python node. The
loader therefore checks each PAL action's and condition's attributes against its ports itself
(the same rule and message BT.CPP applies to declared ports), then hands BT.CPP the original XML
with those port attributes moved into a side table keyed by a unique instance ``name``.
Everything else (controls, decorators, SubTree remapping, scripts, blackboards) is BT.CPP's.

``run_in_btcpp(xml, on_leaf, max_ticks=…)`` ticks the real tree; each PAL action and condition
calls ``on_leaf(LeafCall) -> bool`` (``kind`` tells which) with its ``obj`` resolved through the
node's blackboard (so SubTree port remapping and ``Script`` assignments resolve exactly as in
BT.CPP) and the ``<SubTree>`` calls it runs inside (``calls``, from BT.CPP's ``full_path``). The symbolic executor (``executor.py``) is built on it.

Public API: ``load_in_btcpp``, ``BTLoadResult``, ``run_in_btcpp``, ``LeafCall``, ``BTRunResult``.
"""

from __future__ import annotations

from typing import Callable, Literal

from lxml import etree
from pydantic import BaseModel, Field

from .conditions import CONDITIONS
from .model import BTParseError, condition_of, iter_nodes, pal_action_of, parse_bt_xml, variables_in
from .pal import PAL_V1

# Attributes BT.CPP itself interprets on any node (instance name, pre/post-condition scripts …).
_BTCPP_RESERVED = {"ID", "name", "_description", "_skipIf", "_successIf", "_failureIf", "_while",
                   "_onSuccess", "_onFailure", "_onHalted", "_post"}


class BTLoadResult(BaseModel):
    ok: bool
    error: str = ""
    trees: list[str] = Field(default_factory=list)  # BehaviorTree IDs in document order


class LeafCall(BaseModel):
    """One tick of a PAL action or guard condition, as BT.CPP ran it."""

    kind: Literal["action", "condition"]  # as BT.CPP registered the node
    action: str  # the PAL primitive, or the condition's ID
    path: str  # node path in its own tree (see model.py), e.g. T_Manipulate_Grasp/Sequence/GRASP[1]
    name: str | None = None  # the node's original name attribute (node_07 …)
    obj: str | None = None  # resolved value (blackboard lookups done)
    raw_obj: str | None = None  # as written: "{cup}" or "cup_1"
    calls: list[str] = Field(default_factory=list)  # paths of the <SubTree> calls it runs inside, outermost first
    unbound: str | None = None  # variable that had no blackboard entry


class BTRunResult(BaseModel):
    status: str  # SUCCESS | FAILURE | RUNNING (still running after max_ticks) | ERROR (did not load)
    ticks: int = 0
    error: str = ""


class _LeafSpec(BaseModel):
    action: str
    path: str
    name: str | None
    ports: dict[str, str]


def _shim(xml: str | bytes) -> tuple[str, dict[str, _LeafSpec], dict[str, str], list[str]]:
    """XML for BT.CPP with PAL / condition ports moved to a side table, and ``<SubTree>`` calls named
    ``call_N`` (→ their paths) so a leaf's ``full_path()`` tells which calls it runs in.
    Raises ValueError with BT.CPP-like text."""
    doc = parse_bt_xml(xml)  # BTParseError for non-XML, missing IDs …
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    specs: dict[str, _LeafSpec] = {}
    calls: dict[str, str] = {}
    for tree_el in root.iterchildren("BehaviorTree"):
        tree = doc.tree(tree_el.get("ID"))
        elements = [e for e in tree_el.iter() if isinstance(e.tag, str)][1:]
        for el, (path, node) in zip(elements, iter_nodes(tree), strict=True):
            action, condition = pal_action_of(node), condition_of(node)
            if node.tag == "SubTree":
                calls[f"call_{len(calls) + 1}"] = path
                el.set("name", f"call_{len(calls)}")
            if not (action or condition):
                continue
            ports = PAL_V1[action].ports if action else CONDITIONS[condition].ports
            for attr in list(el.attrib):
                if attr in _BTCPP_RESERVED:
                    continue
                if attr not in ports:
                    raise ValueError(f"a port with name [{attr}] is found in the XML (<{el.tag}>, line {el.sourceline}) "
                                     f"but not in the providedPorts() of its registered node type [{action or condition}] "
                                     f"(ports: {', '.join(ports) or 'none'})")
            key = f"leaf_{len(specs) + 1}"
            specs[key] = _LeafSpec(action=action or condition, path=path, name=el.get("name"),
                                   ports={p: el.get(p) for p in ports if el.get(p) is not None})
            for p in ports:
                el.attrib.pop(p, None)
            el.set("name", key)
    return etree.tostring(root, encoding="unicode"), specs, calls, [t.id for t in doc.trees]


def _factory(on_tick: Callable):
    import behaviortreepy as bt  # C++ extension: loaded only when a tree is loaded

    factory = bt.BehaviorTreeFactory()
    for action in PAL_V1:
        factory.register_simple_action(action, on_tick)
    for condition in CONDITIONS:
        factory.register_simple_condition(condition, on_tick)
    return bt, factory


def load_in_btcpp(xml: str | bytes) -> BTLoadResult:
    """Build the tree in BehaviorTree.CPP with the 14 PAL actions and the conditions registered (nothing is ticked)."""
    try:
        text, _, _, trees = _shim(xml)
    except (BTParseError, ValueError) as exc:
        return BTLoadResult(ok=False, error=str(exc))
    _, factory = _factory(lambda node: "FAILURE")
    try:
        factory.create_tree_from_text(text)
    except Exception as exc:  # BT.CPP raises RuntimeError / LogicError subclasses with its message
        return BTLoadResult(ok=False, error=f"BehaviorTree.CPP: {exc}", trees=trees)
    return BTLoadResult(ok=True, trees=trees)


def run_in_btcpp(xml: str | bytes, on_leaf: Callable[[LeafCall], bool], *, max_ticks: int = 100) -> BTRunResult:
    """Tick the tree in BT.CPP until SUCCESS/FAILURE or ``max_ticks``; PAL actions and conditions call ``on_leaf``."""
    try:
        text, specs, calls, _ = _shim(xml)
    except (BTParseError, ValueError) as exc:
        return BTRunResult(status="ERROR", error=str(exc))

    def on_tick(node) -> str:
        spec = specs.get(node.name())
        if spec is None:  # cannot happen: every PAL / condition node got a shim name
            return "FAILURE"
        raw = spec.ports.get("obj")
        # The kind is BT.CPP's own: conditions were registered as CONDITION nodes.
        kind = "condition" if node.type() == bt.NodeType.CONDITION else "action"
        call = LeafCall(kind=kind, action=spec.action, path=spec.path, name=spec.name, raw_obj=raw, obj=raw,
                        calls=[calls[part] for part in node.full_path().split("/")[:-1] if part in calls])
        var = variables_in(raw) if raw is not None else None
        if var is not None:
            try:
                call.obj = node.config().blackboard.get_string(var)
            except Exception:  # missing key or not a string: the variable is not bound at run time
                call.obj, call.unbound = None, var
        try:
            return "SUCCESS" if on_leaf(call) else "FAILURE"
        except Exception:
            return "FAILURE"

    bt, factory = _factory(on_tick)
    try:
        tree = factory.create_tree_from_text(text)
    except Exception as exc:
        return BTRunResult(status="ERROR", error=f"BehaviorTree.CPP: {exc}")
    status = bt.NodeStatus.RUNNING
    ticks = 0
    while status == bt.NodeStatus.RUNNING and ticks < max_ticks:
        status = tree.tick_exactly_once()
        ticks += 1
    if status == bt.NodeStatus.RUNNING:
        tree.halt_tree()
    return BTRunResult(status=status.name, ticks=ticks)
