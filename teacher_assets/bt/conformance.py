"""Conformance of a teacher tree: BehaviorTree.CPP v4 structure, PAL v1 compliance, parameter flow.

``check_conformance(xml) -> ConformanceReport`` never raises on bad input; every problem is an
issue ``{code, message, path}``. Codes:

Structure — ``xml_malformed``, ``bad_root``, ``no_trees``, ``tree_without_id``, ``tree_root_count``,
``duplicate_tree_id``, ``unknown_element``, ``bad_format`` (``BTCPP_format`` must be ``"4"``),
``missing_main_tree`` (no ``main_tree_to_execute``), ``unknown_main_tree``, ``missing_subtree`` (a
``<SubTree ID>`` with no ``<BehaviorTree>``), ``recursive_subtree``, ``subtree_naming`` (trees other
than the main tree are subtrees and are named ``T_…``), ``missing_node_model`` /
``node_model_ports`` (``TreeNodesModel`` must declare every PAL action used, with exactly its
ports), ``child_count`` (decorators have one child, controls at least one, leaves none),
``missing_attribute`` (e.g. ``RetryUntilSuccessful`` without ``num_attempts``, ``Script`` without
``code``), ``unbounded_loop`` (retry/repeat counts must be literal integers in 1..MAX_LOOP_COUNT).

Nodes — ``unknown_node`` (not a BT.CPP v4 built-in we allow, not PAL), ``forbidden_node`` (time
based: ``Timeout``, ``Delay``, ``Sleep`` — PAL trees are timeless, the same reason ``timeout_ms``
is banned), ``non_pal_action`` (``<Action ID="PickUp">``, ``<MoveTo/>`` declared as an action, a
guard condition written as an action …), ``unknown_condition`` (a ``<Condition>`` that is not one
of the guard conditions in ``conditions.py`` — a PAL action is never a condition). Guard conditions
take the same port rules as PAL actions (``missing_obj``, ``unexpected_port``) and must be declared
in ``TreeNodesModel`` as ``<Condition>`` with exactly their ports.

PAL — ``missing_obj`` (every action but RELEASE needs a non-empty ``obj``), ``timeout_ms``
(forbidden port), ``unexpected_port`` (any other attribute on a PAL action but ``name``).

Parameter flow — ``unbound_variable``. A ``{var}`` is bound
  * in the main tree: by an earlier (document order) ``<Script code="var:='…'">`` assignment or
    ``<SetBlackboard output_key="var" …>``;
  * in a subtree ``T_x``: by a local Script/SetBlackboard, or by a port remapping ``var="…"`` on
    every ``<SubTree ID="T_x">`` call site (``_autoremap="true"`` lends the caller's bindings); a
    subtree that is never called may use the ports its ``TreeNodesModel`` ``<SubTree>`` declares.
  Remapping values at a call site (``target="{cup}"``) are uses in the caller.

Public API: ``check_conformance``, ``ConformanceReport``, ``ConformanceIssue``,
``ALLOWED_CONTROL``, ``ALLOWED_DECORATORS``, ``ALLOWED_LEAVES``, ``FORBIDDEN_NODES``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from .conditions import CONDITIONS
from .model import (BTDocument, BTNode, BTParseError, BehaviorTree, condition_of, iter_nodes, pal_action_of, parse_bt_xml,
                    variables_in)
from .pal import MAX_LOOP_COUNT, PAL_V1

ALLOWED_CONTROL = frozenset({"Sequence", "SequenceWithMemory", "ReactiveSequence", "Fallback", "ReactiveFallback",
                             "Parallel", "ParallelAll", "IfThenElse", "WhileDoElse"})
ALLOWED_DECORATORS = frozenset({"RetryUntilSuccessful", "Repeat", "Inverter", "ForceSuccess", "ForceFailure",
                                "KeepRunningUntilFailure", "RunOnce"})
ALLOWED_LEAVES = frozenset({"SubTree", "Script", "ScriptCondition", "SetBlackboard", "AlwaysSuccess",
                            "AlwaysFailure"})
FORBIDDEN_NODES = frozenset({"Timeout", "Delay", "Sleep"})
_REQUIRED_ATTRS = {"RetryUntilSuccessful": ("num_attempts",), "Repeat": ("num_cycles",), "Script": ("code",),
                   "ScriptCondition": ("code",), "SetBlackboard": ("value", "output_key"), "SubTree": ("ID",)}
_LOOP_ATTR = {"RetryUntilSuccessful": "num_attempts", "Repeat": "num_cycles"}
_RESERVED = {"ID", "name", "_autoremap", "_description"}
# `var := …` / `var = …` at statement starts in BT.CPP scripts.
_SCRIPT_ASSIGN = re.compile(r"(?:^|;)\s*([A-Za-z_@][\w.]*)\s*:?=(?!=)")


class ConformanceIssue(BaseModel):
    code: str
    message: str
    path: str = ""


class ConformanceReport(BaseModel):
    ok: bool
    issues: list[ConformanceIssue] = Field(default_factory=list)
    actions_used: list[str] = Field(default_factory=list)  # PAL primitives present, sorted

    def codes(self) -> set[str]:
        return {i.code for i in self.issues}

    def summary(self) -> str:
        return "; ".join(f"[{i.code}] {i.path}: {i.message}" if i.path else f"[{i.code}] {i.message}"
                         for i in self.issues) or "conformant"


def script_assignments(code: str) -> list[str]:
    """Blackboard keys a BT.CPP script assigns (``cup:='cup_1'; n:=3`` → ``['cup', 'n']``)."""
    return _SCRIPT_ASSIGN.findall(code)


def bindings_of(node: BTNode) -> list[str]:
    if node.tag == "Script":
        return script_assignments(node.attrs.get("code", ""))
    if node.tag == "SetBlackboard" and node.attrs.get("output_key"):
        key = node.attrs["output_key"]
        return [variables_in(key) or key]
    return []


def _uses(node: BTNode) -> list[tuple[str, str]]:
    """(attribute, var) pairs this node reads from the blackboard via ``{var}``."""
    skip = {"ID", "name", "output_key"}
    return [(k, var) for k, v in node.attrs.items() if k not in skip and (var := variables_in(v))]


class _Checker:
    def __init__(self, doc: BTDocument):
        self.doc = doc
        self.issues: list[ConformanceIssue] = []

    def add(self, code: str, message: str, path: str = "") -> None:
        self.issues.append(ConformanceIssue(code=code, message=message, path=path))

    def run(self) -> None:
        doc = self.doc
        if doc.btcpp_format != "4":
            self.add("bad_format", f'<root> must have BTCPP_format="4", found {doc.btcpp_format!r}')
        if not doc.main_tree_to_execute:
            self.add("missing_main_tree", "<root> has no main_tree_to_execute attribute")
        elif not doc.main_tree:
            self.add("unknown_main_tree", f"main_tree_to_execute names \"{doc.main_tree_to_execute}\", which is not a <BehaviorTree>")
        for tree in doc.trees:
            if tree.id != doc.main_tree_to_execute and not tree.id.startswith("T_"):
                self.add("subtree_naming", f"subtree \"{tree.id}\" must be named T_<Name>", tree.id)
            for path, node in iter_nodes(tree):
                self.check_node(path, node)
        self.check_models()
        self.check_recursion()
        self.check_parameter_flow()

    def check_node(self, path: str, node: BTNode) -> None:
        tag, pal = node.tag, pal_action_of(node)
        if pal:
            self.check_ports(path, node, pal, PAL_V1[pal].ports)
            kind = "leaf"
        elif condition := condition_of(node):
            self.check_ports(path, node, condition, CONDITIONS[condition].ports)
            kind = "leaf"
        elif tag == "Condition":
            node_id = node.attrs.get("ID", "")
            why = "a PAL action, not a condition" if node_id in PAL_V1 else "not a known guard condition"
            self.add("unknown_condition", f"<Condition ID=\"{node_id}\"> is {why} (conditions: {', '.join(CONDITIONS)})", path)
            return
        elif tag == "Action":
            node_id = node.attrs.get("ID", "")
            hint = f"; {node_id} is a condition: write <Condition ID=\"{node_id}\">" if node_id in CONDITIONS else ""
            self.add("non_pal_action", f"<Action ID=\"{node_id}\"> is not a PAL v1 primitive "
                                       f"(allowed: {', '.join(PAL_V1)}){hint}", path)
            return
        elif tag in FORBIDDEN_NODES:
            self.add("forbidden_node", f"<{tag}> is time based; PAL trees must not depend on wall-clock time", path)
            return
        elif tag in ALLOWED_CONTROL:
            kind = "control"
        elif tag in ALLOWED_DECORATORS:
            kind = "decorator"
        elif tag in ALLOWED_LEAVES:
            kind = "leaf"
        else:
            self.add("unknown_node" if not self.doc.model(tag) else "non_pal_action",
                     f"<{tag}> is neither a PAL v1 primitive nor an allowed BehaviorTree.CPP v4 node", path)
            return
        n = len(node.children)
        if kind == "control" and n < 1 or kind == "decorator" and n != 1 or kind == "leaf" and n:
            want = {"control": "at least one child", "decorator": "exactly one child", "leaf": "no children"}[kind]
            self.add("child_count", f"<{tag}> must have {want}, has {n}", path)
        for attr in _REQUIRED_ATTRS.get(tag, ()):
            if not node.attrs.get(attr, "").strip():
                self.add("missing_attribute", f"<{tag}> needs the attribute {attr}", path)
        if tag in _LOOP_ATTR and node.attrs.get(_LOOP_ATTR[tag], "").strip():
            raw = node.attrs[_LOOP_ATTR[tag]].strip()
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOOP_COUNT:
                self.add("unbounded_loop", f"{tag} {_LOOP_ATTR[tag]}=\"{raw}\" must be an integer in 1..{MAX_LOOP_COUNT}", path)

    def check_ports(self, path: str, node: BTNode, leaf: str, ports: tuple[str, ...]) -> None:
        """A PAL action's or guard condition's attributes against its ports."""
        for attr, value in node.attrs.items():
            if attr in _RESERVED:
                continue
            if attr == "timeout_ms":
                self.add("timeout_ms", f"{leaf} has a timeout_ms port; PAL v1 forbids timeouts", path)
            elif attr not in ports:
                self.add("unexpected_port", f"{leaf} has no port \"{attr}\" (ports: {', '.join(ports) or 'none'})", path)
        if "obj" in ports and not node.attrs.get("obj", "").strip():
            self.add("missing_obj", f"{leaf} needs obj=\"…\" (the object it acts on)", path)
        if node.children:
            self.add("child_count", f"{leaf} is a leaf and must have no children", path)

    def check_models(self) -> None:
        used = sorted({pal for t in self.doc.trees for _, n in iter_nodes(t) if (pal := pal_action_of(n))})
        for pal in used:
            model = self.doc.model(pal)
            if model is None or model.kind != "Action":
                self.add("missing_node_model", f"<TreeNodesModel> does not declare <Action ID=\"{pal}\">")
                continue
            declared = sorted(p.name for p in model.ports if p.direction == "input_port")
            others = [p.name for p in model.ports if p.direction != "input_port"]
            if declared != sorted(PAL_V1[pal].ports) or others:
                self.add("node_model_ports", f"<TreeNodesModel> declares {pal} with ports {declared + others}, "
                                             f"PAL v1 has input ports {list(PAL_V1[pal].ports)}")
        conditions = sorted({c for t in self.doc.trees for _, n in iter_nodes(t) if (c := condition_of(n))})
        for condition in conditions:
            model = self.doc.model(condition)
            if model is None or model.kind != "Condition":
                self.add("missing_node_model", f"<TreeNodesModel> does not declare <Condition ID=\"{condition}\">")
            elif sorted(p.name for p in model.ports if p.direction == "input_port") != sorted(CONDITIONS[condition].ports) \
                    or any(p.direction != "input_port" for p in model.ports):
                self.add("node_model_ports", f"<TreeNodesModel> declares {condition} with ports "
                                             f"{[p.name for p in model.ports]}, it has input ports {list(CONDITIONS[condition].ports)}")
        for model in self.doc.node_models:
            if model.kind == "Action" and model.id not in PAL_V1:
                self.add("non_pal_action", f"<TreeNodesModel> declares non-PAL Action \"{model.id}\"")
            elif model.kind == "Condition" and model.id not in CONDITIONS:
                self.add("unknown_condition", f"<TreeNodesModel> declares unknown Condition \"{model.id}\"")

    def calls(self, tree: BehaviorTree) -> list[tuple[str, BTNode]]:
        return [(p, n) for p, n in iter_nodes(tree) if n.tag == "SubTree"]

    def check_recursion(self) -> None:
        graph = {t.id: [n.attrs.get("ID", "") for _, n in self.calls(t)] for t in self.doc.trees}
        for tree in self.doc.trees:
            for path, call in self.calls(tree):
                if call.attrs.get("ID") and not self.doc.tree(call.attrs["ID"]):
                    self.add("missing_subtree", f"<SubTree ID=\"{call.attrs['ID']}\"> has no <BehaviorTree> definition", path)

        def reaches(start: str, goal: str, seen: set[str]) -> bool:
            for nxt in graph.get(start, []):
                if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                    return True
            return False

        for tree_id in graph:
            if reaches(tree_id, tree_id, {tree_id}):
                self.add("recursive_subtree", f"tree \"{tree_id}\" calls itself through subtrees", tree_id)

    def bound_before(self, tree: BehaviorTree, inherited: set[str]) -> dict[str, set[str]]:
        """For each node path: the variables bound when it runs (inherited + earlier local bindings)."""
        bound, out = set(inherited), {}
        for path, node in iter_nodes(tree):
            out[path] = set(bound)
            bound.update(bindings_of(node))
        return out

    def check_parameter_flow(self) -> None:
        doc = self.doc
        if any(i.code in ("missing_subtree", "recursive_subtree") for i in self.issues):
            return  # scopes are undefined; those issues already say why
        scopes: dict[str, list[set[str]]] = {}  # tree id → the inherited bindings of each call site

        def visit(tree: BehaviorTree, inherited: set[str]) -> None:
            before = self.bound_before(tree, inherited)
            for path, node in iter_nodes(tree):
                for attr, var in _uses(node):
                    if var not in before[path]:
                        self.add("unbound_variable", f"{{{var}}} in {attr}= is not bound: assign it earlier with "
                                                     f"<Script code=\"{var}:='…'\"/> or remap it as a SubTree port", path)
                if node.tag == "SubTree" and (callee := doc.tree(node.attrs.get("ID", ""))):
                    ports = {k for k in node.attrs if k not in _RESERVED}
                    if node.attrs.get("_autoremap", "").lower() == "true":
                        ports |= before[path]
                    scopes.setdefault(callee.id, []).append(ports)
                    visit(callee, ports)

        if doc.main_tree:
            visit(doc.main_tree, set())
        for tree in doc.trees:
            if tree.id != doc.main_tree_to_execute and tree.id not in scopes:
                model = doc.model(tree.id)
                visit(tree, {p.name for p in model.ports} if model else set())
        # A subtree called from several places reports the same missing variable once per path.
        unique, seen = [], set()
        for issue in self.issues:
            key = (issue.code, issue.message, issue.path)
            if key not in seen:
                seen.add(key)
                unique.append(issue)
        self.issues = unique


def check_conformance(xml: str | bytes) -> ConformanceReport:
    try:
        doc = parse_bt_xml(xml)
    except BTParseError as exc:
        return ConformanceReport(ok=False, issues=[ConformanceIssue(code=exc.code, message=exc.message)])
    checker = _Checker(doc)
    checker.run()
    used = sorted({pal for t in doc.trees for _, n in iter_nodes(t) if (pal := pal_action_of(n))})
    return ConformanceReport(ok=not checker.issues, issues=checker.issues, actions_used=used)

