"""The offline author's scenario roles: a rule-based Planner, Coder and Internal Reviewer.

They answer exactly what a hosted model must (JSON matching the agent's schema), from the JSON
input block of the last user message. With ``inject_domain_fault`` they give a plausible but
wrong answer: the coder a broken script, the reviewer a lax approval; the planner stays right.
"""

from __future__ import annotations

import json
import re
from typing import Any

from benchgen_assets.records import ScaleLimits
from resources.llm import OfflineRequest, offline_role

from .agents import CODER_ROLE, PLANNER_ROLE, REVIEWER_ROLE
from .request_text import match_family, parse_request_text
from .static_review import static_review

FAULT_KINDS = ("syntax", "signature", "exception", "forbidden_import", "geometry")


def _family_limits(info: dict[str, Any]) -> ScaleLimits:
    return ScaleLimits(min=tuple(info["scale_min"]), max=tuple(info["scale_max"]))


def choose_family(request: dict[str, Any], families: list[dict[str, Any]]) -> dict[str, Any]:
    """Explicit family, else the family the prompt names, else one of the tier's families by seed."""
    by_name = {f["name"]: f for f in families}
    prompt = request.get("prompt") or ""
    tier = request.get("tier") or parse_request_text(prompt).tier
    if request.get("family"):
        if request["family"] in by_name:
            return by_name[request["family"]]
        prompt = f"{request['family']} {prompt}"  # an unknown name may still say what it means
    named = match_family(prompt, [(f["name"], f["tier"], f["title"]) for f in families], tier) if prompt else None
    if named:
        return by_name[named]
    pool = sorted((f for f in families if f["tier"] == (tier or 1)), key=lambda f: f["name"]) or \
        sorted(families, key=lambda f: f["name"])
    return pool[int(request.get("seed") or 0) % len(pool)]


@offline_role(PLANNER_ROLE)
def plan(request: OfflineRequest) -> str:
    data = request.input or {}
    families = data.get("known_families") or []
    if not families:
        raise ValueError("the planner input lists no known families")
    req = data.get("request") or {}
    fam = choose_family(req, families)
    tier = req.get("tier") or fam["tier"]
    what = f" for the request {req['prompt']!r}" if req.get("prompt") else ""
    return json.dumps({
        "title": fam["title"],
        "family": fam["name"],
        "tier": tier,
        "summary": f"{fam['description']} (tier {tier} {fam['name']} scenario{what}.)",
        "geometric_requirements": [
            fam["description"],
            "Every part is one closed, manifold, non-self-intersecting solid in millimetres, placed in world "
            "coordinates with the table top at z = 0.",
            "Fixtures are fixed; free objects rest on or slightly above their support with no interpenetration.",
            "Dimensions are drawn from random.Random(seed) within the family's ranges and multiplied per axis "
            "by the scale vector.",
        ],
        "learning_objectives": [fam["learning_objective"]],
        "self_verification": [
            "The script parses and build(seed, scale) runs in the sandbox for every variant.",
            "Every solid passes OCCT BRepCheck, is manifold, and its STL is watertight with consistent winding.",
            "The composed MJCF validates against MuJoCo's schema and compiles.",
            "1 s of simulation from rest: no warnings, finite state, small velocities, no deep penetration.",
        ],
        "scale_limits": _family_limits(fam).model_dump(mode="json"),
    })


def _family_for_code(data: dict[str, Any]) -> str:
    from benchgen_assets.families import FAMILIES

    name = data.get("family") or (data.get("plan") or {}).get("family")
    if name in FAMILIES:
        return name
    tier = (data.get("plan") or {}).get("tier") or 1
    return sorted(n for n, f in FAMILIES.items() if f.tier == tier)[0]


@offline_role(CODER_ROLE)
def code(request: OfflineRequest) -> str:
    from benchgen_assets.families import family_source

    data = request.input or {}
    family = _family_for_code(data)
    source = family_source(family)
    if data.get("feedback"):  # a repair turn: answer the script that satisfies the feedback
        return json.dumps({"code": source, "notes": f"fixed: rewrote the {family} module from the plan"})
    if request.inject_domain_fault:
        kind = FAULT_KINDS[request.seed % len(FAULT_KINDS)]
        return json.dumps({"code": broken_script(source, kind), "notes": f"{family} module"})
    return json.dumps({"code": source, "notes": f"{family} module following the plan"})


@offline_role(REVIEWER_ROLE)
def review(request: OfflineRequest) -> str:
    data = request.input or {}
    if request.inject_domain_fault:  # a lax reviewer: approves without reading
        return json.dumps({"decision": "approve", "issues": [], "summary": "looks fine"})
    issues = static_review(data.get("code") or "")
    if issues:
        return json.dumps({"decision": "revise", "issues": issues,
                           "summary": f"{len(issues)} issue(s) must be fixed before running it"})
    return json.dumps({"decision": "approve", "issues": [],
                       "summary": "signature, seeded randomness, scaling, Scene return and imports are all right"})


# -- plausible mistakes, for fault injection -------------------------------------------------------

_DEF_BUILD = re.compile(r"^def build\((?P<params>[^)]*)\)(?P<ret>[^:\n]*):", re.M)


def _body_indent(source: str, def_end: int) -> str:
    for line in source[def_end:].splitlines()[1:]:
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return "    "


def _insert_in_build(source: str, lines: list[str]) -> str:
    m = _DEF_BUILD.search(source)
    indent = _body_indent(source, m.end())
    line_end = source.index("\n", m.end()) + 1
    return source[:line_end] + "".join(f"{indent}{line}\n" for line in lines) + source[line_end:]


def broken_script(source: str, kind: str) -> str:
    """The family script with one mistake a model plausibly makes."""
    m = _DEF_BUILD.search(source)
    if m is None:
        raise ValueError("family source has no `def build(...)` line")
    if kind == "syntax":  # a missing colon
        return source[: m.end() - 1] + source[m.end():]
    if kind == "signature":  # forgot the scale parameter
        return source[: m.start("params")] + "seed: int" + source[m.end("params"):]
    if kind == "exception":  # a name that was never defined
        return _insert_in_build(source, ["clearance_mm = base_clearance_mm * min(scale)"])
    if kind == "forbidden_import":  # reads configuration from the environment
        return "import os\n" + _insert_in_build(source, ['units = os.environ.get("BENCHGEN_UNITS", "mm")'])
    if kind == "geometry":  # a rib added as a second overlapping solid instead of being fused
        return source + (
            "\n\nfrom build123d import Box, Compound, Pos\n\n_build_without_rib = build\n\n\n"
            "def build(seed, scale):\n"
            "    scene = _build_without_rib(seed, scale)\n"
            "    base = scene.parts[0]\n"
            "    bb = base.solid.bounding_box()\n"
            "    rib = Pos(bb.center().X, bb.center().Y, bb.min.Z + bb.size.Z / 2) * Box(bb.size.X / 2, bb.size.Y / 2, bb.size.Z / 2)\n"
            "    base.solid = Compound([base.solid, rib])\n"
            "    return scene\n"
        )
    raise ValueError(f"unknown fault kind {kind!r}; known: {FAULT_KINDS}")

