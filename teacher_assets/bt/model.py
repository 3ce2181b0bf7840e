"""BehaviorTree.CPP v4 XML as pydantic models: parse, walk, serialize canonically.

Canonical form written by ``to_bt_xml`` (and the form BehaviorTree.CPP v4 loads)::

    <root BTCPP_format="4" main_tree_to_execute="Main">
      <BehaviorTree ID="Main">
        <Sequence name="node_01">
          <Script code="cup:='cup_1'"/>
          <Action ID="GRASP" obj="{cup}"/>
          <SubTree ID="T_Manipulate_Place" target="{tray}"/>
        </Sequence>
      </BehaviorTree>
      <BehaviorTree ID="T_Manipulate_Place"> … <Action ID="PLACE_ON_TOP" obj="{target}"/> … </BehaviorTree>
      <TreeNodesModel>
        <Action ID="GRASP"><input_port name="obj" type="std::string">…</input_port></Action>
        … (all 14 PAL actions, the guard conditions the document uses or declares, then any
        other declared models)
      </TreeNodesModel>
    </root>

* PAL leaves are written ``<Action ID="GRASP" obj="{cup}"/>``, guard conditions (``conditions.py``)
  ``<Condition ID="IsOpen" obj="{drawer}"/>``. The compact forms ``<GRASP obj="{cup}"/>`` and
  ``<IsOpen obj="…"/>`` are accepted by the parser and normalized, so ``to_bt_xml(parse_bt_xml(x))``
  is a fixed point. Other tags are kept as written.
* Attribute order: ``ID``, ``name``, then the rest alphabetically; two-space indentation; no XML
  declaration; trees in document order, ``TreeNodesModel`` last.
* Node paths (used in conformance issues, execution traces, ``fail_once``):
  ``<TreeID>/<label>/<label>[i]/…`` where ``label`` is the PAL action name for PAL actions, the
  ID for other ``Action``/``Condition`` nodes, ``SubTree:<ID>`` for subtree calls and the tag
  otherwise, and ``[i]`` is the child index under its parent (the tree's root has none).
  Example: ``Main/Sequence/Fallback[2]/GRASP[0]``.

Public API: ``BTNode``, ``BehaviorTree``, ``PortModel``, ``NodeModel``, ``BTDocument``,
``BTParseError`` (``code``, ``message``), ``parse_bt_xml``, ``to_bt_xml``, ``node_label``,
``iter_nodes``, ``pal_action_of``, ``condition_of``, ``variables_in``.
"""

from __future__ import annotations

import re
from typing import Iterator

from lxml import etree
from pydantic import BaseModel, Field

from .conditions import CONDITIONS
from .pal import PAL_V1

_VAR = re.compile(r"^\{([^{}]+)\}$")


class BTParseError(ValueError):
    """The text is not a BehaviorTree.CPP document we can model; ``code`` names the reason."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class BTNode(BaseModel):
    tag: str
    attrs: dict[str, str] = Field(default_factory=dict)
    children: list["BTNode"] = Field(default_factory=list)


class BehaviorTree(BaseModel):
    id: str
    root: BTNode
    attrs: dict[str, str] = Field(default_factory=dict)  # other attributes of <BehaviorTree>, e.g. _description


class PortModel(BaseModel):
    name: str
    direction: str = "input_port"  # input_port | output_port | inout_port
    type: str | None = None
    default: str | None = None
    description: str = ""


class NodeModel(BaseModel):
    kind: str  # Action | Condition | Control | Decorator | SubTree
    id: str
    ports: list[PortModel] = Field(default_factory=list)


class BTDocument(BaseModel):
    btcpp_format: str | None = "4"
    main_tree_to_execute: str | None = None
    trees: list[BehaviorTree] = Field(default_factory=list)
    node_models: list[NodeModel] = Field(default_factory=list)

    def tree(self, tree_id: str) -> BehaviorTree | None:
        return next((t for t in self.trees if t.id == tree_id), None)

    @property
    def main_tree(self) -> BehaviorTree | None:
        return self.tree(self.main_tree_to_execute) if self.main_tree_to_execute else None

    def model(self, node_id: str) -> NodeModel | None:
        return next((m for m in self.node_models if m.id == node_id), None)


def pal_action_of(node: BTNode) -> str | None:
    """The PAL primitive a node invokes, or None (also None for non-PAL ``<Action ID=…>``)."""
    name = node.attrs.get("ID") if node.tag == "Action" else node.tag
    return name if name in PAL_V1 else None


def condition_of(node: BTNode) -> str | None:
    """The guard condition a ``<Condition ID=…>`` node asks, or None (also None for unknown conditions)."""
    name = node.attrs.get("ID") if node.tag == "Condition" else None
    return name if name in CONDITIONS else None


def node_label(node: BTNode) -> str:
    pal = pal_action_of(node)
    if pal:
        return pal
    if node.tag == "SubTree":
        return f"SubTree:{node.attrs.get('ID', '?')}"
    if node.tag in ("Action", "Condition") and "ID" in node.attrs:
        return node.attrs["ID"]
    return node.tag


def iter_nodes(tree: BehaviorTree) -> Iterator[tuple[str, BTNode]]:
    """(path, node) in document order (pre-order)."""

    def walk(node: BTNode, path: str) -> Iterator[tuple[str, BTNode]]:
        yield path, node
        for i, child in enumerate(node.children):
            yield from walk(child, f"{path}/{node_label(child)}[{i}]")

    yield from walk(tree.root, f"{tree.id}/{node_label(tree.root)}")


def variables_in(value: str) -> str | None:
    """``"{cup}"`` → ``"cup"``; a literal → None."""
    m = _VAR.match(value.strip())
    return m.group(1).strip() if m else None


# ---------------------------------------------------------------------------------- parsing


def _element_children(el) -> list:
    return [c for c in el if isinstance(c.tag, str)]  # skip comments / processing instructions


def _node_from_element(el) -> BTNode:
    attrs = {str(k): str(v) for k, v in el.attrib.items()}
    tag = str(el.tag)
    if tag in PAL_V1 and "ID" not in attrs:  # compact form <GRASP obj=…/> → <Action ID="GRASP" …/>
        attrs = {"ID": tag, **attrs}
        tag = "Action"
    elif tag in CONDITIONS and "ID" not in attrs:  # <IsOpen obj=…/> → <Condition ID="IsOpen" …/>
        attrs = {"ID": tag, **attrs}
        tag = "Condition"
    return BTNode(tag=tag, attrs=attrs, children=[_node_from_element(c) for c in _element_children(el)])


def _models_from_element(el) -> list[NodeModel]:
    models = []
    for m in _element_children(el):
        ports = [
            PortModel(name=p.get("name", ""), direction=str(p.tag), type=p.get("type"),
                      default=p.get("default"), description=(p.text or "").strip())
            for p in _element_children(m)
        ]
        models.append(NodeModel(kind=str(m.tag), id=m.get("ID", ""), ports=ports))
    return models


def parse_bt_xml(text: str | bytes) -> BTDocument:
    """Parse BehaviorTree.CPP XML; raises ``BTParseError`` (code + message) when it cannot."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    if not text.strip():
        raise BTParseError("xml_malformed", "empty document")
    try:
        root = etree.fromstring(text, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise BTParseError("xml_malformed", f"XML is not well-formed: {exc}") from None
    if root.tag != "root":
        raise BTParseError("bad_root", f"the document element must be <root>, found <{root.tag}>")
    doc = BTDocument(btcpp_format=root.get("BTCPP_format"), main_tree_to_execute=root.get("main_tree_to_execute"))
    for el in _element_children(root):
        if el.tag == "BehaviorTree":
            tree_id = el.get("ID")
            if not tree_id:
                raise BTParseError("tree_without_id", f"<BehaviorTree> at line {el.sourceline} has no ID")
            kids = _element_children(el)
            if len(kids) != 1:
                raise BTParseError("tree_root_count",
                                   f"<BehaviorTree ID=\"{tree_id}\"> must have exactly one root node, has {len(kids)}")
            if doc.tree(tree_id):
                raise BTParseError("duplicate_tree_id", f"two <BehaviorTree> elements have ID \"{tree_id}\"")
            attrs = {str(k): str(v) for k, v in el.attrib.items() if k != "ID"}
            doc.trees.append(BehaviorTree(id=tree_id, root=_node_from_element(kids[0]), attrs=attrs))
        elif el.tag == "TreeNodesModel":
            doc.node_models.extend(_models_from_element(el))
        else:
            raise BTParseError("unknown_element", f"unexpected <{el.tag}> under <root> (line {el.sourceline})")
    if not doc.trees:
        raise BTParseError("no_trees", "the document has no <BehaviorTree>")
    return doc


# ------------------------------------------------------------------------------ serializing


def _quote(value: str) -> str:
    return '"' + (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
                  .replace("\n", "&#10;").replace("\t", "&#9;")) + '"'


def _attr_text(attrs: dict[str, str]) -> str:
    first = [k for k in ("ID", "name") if k in attrs]
    keys = first + sorted(k for k in attrs if k not in ("ID", "name"))
    return "".join(f" {k}={_quote(attrs[k])}" for k in keys)


def _node_lines(node: BTNode, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if node.children:
        out.append(f"{pad}<{node.tag}{_attr_text(node.attrs)}>")
        for child in node.children:
            _node_lines(child, depth + 1, out)
        out.append(f"{pad}</{node.tag}>")
    else:
        out.append(f"{pad}<{node.tag}{_attr_text(node.attrs)}/>")


def pal_node_models() -> list[NodeModel]:
    return [
        NodeModel(kind="Action", id=p.name, ports=[
            PortModel(name=port, type="std::string", description=f"object {p.name} acts on") for port in p.ports
        ])
        for p in PAL_V1.values()
    ]


def condition_node_models(doc: BTDocument) -> list[NodeModel]:
    """Canonical models of the guard conditions ``doc`` uses or declares, in ``CONDITIONS`` order."""
    wanted = {c for t in doc.trees for _, n in iter_nodes(t) if (c := condition_of(n))}
    wanted |= {m.id for m in doc.node_models if m.kind == "Condition" and m.id in CONDITIONS}
    return [NodeModel(kind="Condition", id=c.name, ports=[
        PortModel(name=port, type="std::string", description=c.description) for port in c.ports])
        for c in CONDITIONS.values() if c.name in wanted]


def _model_lines(model: NodeModel, out: list[str]) -> None:
    if not model.ports:
        out.append(f"    <{model.kind} ID={_quote(model.id)}/>")
        return
    out.append(f"    <{model.kind} ID={_quote(model.id)}>")
    for p in model.ports:
        attrs = {"name": p.name, **({"type": p.type} if p.type else {}), **({"default": p.default} if p.default is not None else {})}
        body = p.description.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out.append(f"      <{p.direction}{_attr_text(attrs)}>{body}</{p.direction}>" if body
                   else f"      <{p.direction}{_attr_text(attrs)}/>")
    out.append(f"    </{model.kind}>")


def to_bt_xml(doc: BTDocument) -> str:
    """Canonical BehaviorTree.CPP v4 text (deterministic; see the module docstring)."""
    root_attrs = {"BTCPP_format": doc.btcpp_format or "4"}
    if doc.main_tree_to_execute:
        root_attrs["main_tree_to_execute"] = doc.main_tree_to_execute
    out = [f"<root{''.join(f' {k}={_quote(v)}' for k, v in root_attrs.items())}>"]
    for tree in doc.trees:
        out.append(f"  <BehaviorTree{_attr_text({'ID': tree.id, **tree.attrs})}>")
        _node_lines(tree.root, 2, out)
        out.append("  </BehaviorTree>")
    out.append("  <TreeNodesModel>")
    for model in pal_node_models() + condition_node_models(doc):
        _model_lines(model, out)
    others = (m for m in doc.node_models if m.id not in PAL_V1 and not (m.kind == "Condition" and m.id in CONDITIONS))
    for model in sorted(others, key=lambda m: (m.kind, m.id)):
        _model_lines(model, out)
    out.append("  </TreeNodesModel>")
    out.append("</root>")
    return "\n".join(out) + "\n"
