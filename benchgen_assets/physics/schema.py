"""Validation 3a: check MJCF text against the installed MuJoCo's own schema.

``mujoco.mj_printSchema`` prints the element tree MuJoCo's XML reader accepts: each element with
its multiplicity (``!`` exactly once, ``?`` at most once, ``*`` any, ``R`` any and may nest in
itself) and its attribute names. It is parsed once per MuJoCo version. The printed schema has no
attribute types, so value checks use ``ATTRIBUTE_TYPES`` below (from the MJCF XML reference) for
the attributes scenario scenes use; other attributes are checked for being known only.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import mujoco
from lxml import etree


@dataclass
class SchemaElement:
    name: str
    multiplicity: str  # one of ! ? * R
    attributes: frozenset[str]
    children: dict[str, "SchemaElement"] = field(default_factory=dict)


@lru_cache(maxsize=4)
def mujoco_schema(version: str = mujoco.__version__) -> SchemaElement:
    """The element tree of this MuJoCo version (the argument keys the cache)."""
    rows = re.findall(r'<td[^>]*class="el">(.*?)</td>\s*<td class="ty">(.*?)</td>\s*<td class="at">(.*?)</td>',
                      mujoco.mj_printSchema(True, False), flags=re.S)
    root: SchemaElement | None = None
    stack: list[tuple[int, SchemaElement]] = []
    for cell, multiplicity, attrs in rows:
        depth = cell.count("&nbsp;") // 4
        name = html.unescape(cell.replace("&nbsp;", "")).strip()
        attributes = frozenset() if "no attributes" in attrs else frozenset(html.unescape(attrs).split())
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if name == "(world)body":
            # One schema entry for both <worldbody> (under <mujoco>) and <body> (nested recursively).
            node = SchemaElement("body", "R", attributes)
            node.children["body"] = node
            stack[-1][1].children["worldbody"] = SchemaElement("worldbody", "*", frozenset(), node.children)
        else:
            node = SchemaElement(name, multiplicity, attributes)
            if multiplicity == "R":
                node.children[name] = node
            if stack:
                stack[-1][1].children[name] = node
            else:
                root = node
        stack.append((depth, node))
    if root is None or root.name != "mujoco":
        raise RuntimeError(f"cannot parse mj_printSchema output of MuJoCo {version}")
    return root


# Value types: ("real", min_count, max_count) | ("int", min, max) | ("keyword", {...}).
_BOOL = ("keyword", frozenset({"true", "false"}))
_AUTO_BOOL = ("keyword", frozenset({"true", "false", "auto"}))


def _real(n: int, m: int | None = None):
    return ("real", n, m if m is not None else n)


def _int(n: int = 1):
    return ("int", n, n)


ATTRIBUTE_TYPES: dict[str, tuple] = {
    # generic names (any element), overridden by "element.attribute" entries below
    "pos": _real(3), "quat": _real(4), "axisangle": _real(4), "euler": _real(3), "xyaxes": _real(6), "zaxis": _real(3),
    "axis": _real(3), "rgba": _real(4), "fromto": _real(6), "range": _real(2), "size": _real(1, 3),
    "friction": _real(1, 3), "solref": _real(2), "solimp": _real(3, 5), "solreflimit": _real(2), "solimplimit": _real(3, 5),
    "solreffriction": _real(2), "solimpfriction": _real(3, 5), "margin": _real(1), "gap": _real(1), "mass": _real(1),
    "density": _real(1), "damping": _real(1), "armature": _real(1), "stiffness": _real(1), "frictionloss": _real(1),
    "springref": _real(1), "ref": _real(1), "diaginertia": _real(3), "fullinertia": _real(6), "timestep": _real(1),
    "gravity": _real(3), "wind": _real(3), "magnetic": _real(3), "impratio": _real(1), "tolerance": _real(1),
    "iterations": _int(), "ls_iterations": _int(), "contype": _int(), "conaffinity": _int(), "group": _int(),
    "priority": _int(), "condim": ("keyword", frozenset({"1", "3", "4", "6"})), "dir": _real(3), "diffuse": _real(3),
    "ambient": _real(3), "attenuation": _real(3), "cutoff": _real(1), "exponent": _real(1), "fovy": _real(1),
    "refpos": _real(3), "refquat": _real(4), "scale": _real(3), "rgb1": _real(3), "rgb2": _real(3), "width": _int(),
    "height": _int(), "texrepeat": _real(2), "reflectance": _real(1), "shininess": _real(1), "emission": _real(1),
    "offwidth": _int(), "offheight": _int(), "shadowsize": _int(), "offsamples": _int(), "castshadow": _BOOL,
    "directional": _BOOL, "active": _BOOL, "texuniform": _BOOL, "autolimits": _BOOL, "fusestatic": _BOOL,
    "discardvisual": _BOOL, "limited": _AUTO_BOOL, "inertiafromgeom": _AUTO_BOOL, "align": _AUTO_BOOL,
    "angle": ("keyword", frozenset({"radian", "degree"})),
    "integrator": ("keyword", frozenset({"Euler", "RK4", "implicit", "implicitfast"})),
    "cone": ("keyword", frozenset({"pyramidal", "elliptic"})),
    "solver": ("keyword", frozenset({"PGS", "CG", "Newton"})),
    "jacobian": ("keyword", frozenset({"dense", "sparse", "auto"})),
    "mark": ("keyword", frozenset({"edge", "cross", "random", "none"})),
    "geom.type": ("keyword", frozenset({"plane", "hfield", "sphere", "capsule", "ellipsoid", "cylinder", "box", "mesh", "sdf"})),
    "joint.type": ("keyword", frozenset({"free", "ball", "slide", "hinge"})),
    "light.type": ("keyword", frozenset({"spot", "directional", "point", "image"})),
    "camera.mode": ("keyword", frozenset({"fixed", "track", "trackcom", "targetbody", "targetbodycom"})),
    "light.mode": ("keyword", frozenset({"fixed", "track", "trackcom", "targetbody", "targetbodycom"})),
    "texture.type": ("keyword", frozenset({"2d", "cube", "skybox"})),
    "texture.builtin": ("keyword", frozenset({"none", "gradient", "checker", "flat"})),
    "pair.friction": _real(5), "light.specular": _real(3), "material.specular": _real(1),
    "site.size": _real(1, 3), "mesh.scale": _real(3), "polycoef": _real(5), "anchor": _real(3),
}


def _value_error(spec: tuple, value: str) -> str | None:
    kind = spec[0]
    if kind == "keyword":
        return None if value in spec[1] else f"must be one of {sorted(spec[1])}"
    tokens = value.split()
    lo, hi = spec[1], spec[2]
    if not lo <= len(tokens) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        return f"needs {want} {'integer' if kind == 'int' else 'real'} value(s), got {len(tokens)}"
    for token in tokens:
        try:
            number = int(token) if kind == "int" else float(token)
        except ValueError:
            return f"{token!r} is not {'an integer' if kind == 'int' else 'a number'}"
        if not math.isfinite(number):
            return f"{token!r} is not finite"
    return None


def mjcf_schema_errors(xml_text: str) -> list[str]:
    """Every schema violation in ``xml_text``, each naming the line, element and attribute."""
    try:
        root = etree.fromstring(xml_text.encode("utf-8") if isinstance(xml_text, str) else xml_text)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    schema = mujoco_schema()
    if root.tag != schema.name:
        return [f"line {root.sourceline}: root element is <{root.tag}>, expected <mujoco>"]
    errors: list[str] = []
    _check(root, schema, errors)
    return errors


def _check(element: etree._Element, node: SchemaElement, errors: list[str]) -> None:
    where = f"line {element.sourceline}: <{element.tag}>"
    for attr, value in element.attrib.items():
        if attr not in node.attributes:
            errors.append(f"{where} has unknown attribute {attr!r} (allowed: {' '.join(sorted(node.attributes)) or 'none'})")
            continue
        spec = ATTRIBUTE_TYPES.get(f"{element.tag}.{attr}") or ATTRIBUTE_TYPES.get(attr)
        problem = _value_error(spec, value.strip()) if spec else None
        if problem:
            errors.append(f"{where} attribute {attr}={value!r}: {problem}")
    counts: dict[str, int] = {}
    for child in element:
        if not isinstance(child.tag, str):  # comments, processing instructions
            continue
        child_node = node.children.get(child.tag)
        if child_node is None:
            allowed = " ".join(sorted(node.children)) or "none"
            errors.append(f"line {child.sourceline}: <{child.tag}> is not allowed inside <{element.tag}> (allowed: {allowed})")
            continue
        counts[child.tag] = counts.get(child.tag, 0) + 1
        if child_node.multiplicity in "!?" and counts[child.tag] == 2:
            errors.append(f"line {child.sourceline}: <{child.tag}> may appear at most once inside <{element.tag}>")
        _check(child, child_node, errors)
