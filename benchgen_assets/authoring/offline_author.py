"""The offline author's scenario roles: a rule-based Planner, Coder and Internal Reviewer.

They answer exactly what a hosted model must (JSON matching the agent's schema), from the JSON
input block of the last user message. With ``inject_domain_fault`` they give a plausible but
wrong answer: the coder a broken script, the reviewer a lax approval; the planner stays right.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any, Union

from benchgen_assets.records import ScaleLimits
from resources.llm import OfflineRequest, offline_role

from .agents import CODER_ROLE, PLANNER_ROLE, REVIEWER_ROLE
from .composition import Composition, components_for, composed_script, composition_of, describe
from .request_text import check_servable, known_families, parse_request_text
from .static_review import static_review

FAULT_KINDS = ("syntax", "signature", "exception", "forbidden_import", "geometry")


def _family_limits(info: dict[str, Any]) -> ScaleLimits:
    return ScaleLimits(min=tuple(info["scale_min"]), max=tuple(info["scale_max"]))


def tier_family(families: list[dict[str, Any]], tier: int, seed: int) -> dict[str, Any]:
    """Round-robin over a shuffle (seeded by the tier) of the tier's families: a batch's consecutive
    seeds cover every family of the tier before any repeats."""
    pool = sorted((f for f in families if f["tier"] == tier), key=lambda f: f["name"]) or \
        sorted(families, key=lambda f: f["name"])
    random.Random(f"benchgen-tier-families:{tier}").shuffle(pool)
    return pool[seed % len(pool)]


def choose_family(request: dict[str, Any], families: list[dict[str, Any]]) -> Union[dict[str, Any], Composition]:
    """Explicit family, else what the prompt names (one family, or a composition of several),
    else the tier's families in turn. UnservablePrompt for a prompt naming what no family builds."""
    by_name = {f["name"]: f for f in families}
    prompt = request.get("prompt") or ""
    tier = request.get("tier") or parse_request_text(prompt).tier
    if request.get("family"):
        if request["family"] in by_name:
            return by_name[request["family"]]
        prompt = f"{request['family'].replace('_', ' ')} {prompt}"  # an unknown name may still say what it means
    if prompt:
        reading = check_servable(prompt, known_families(families), tier)
        if len(reading.mentions) == 1 and reading.mentions[0].copies == 1:
            return by_name[reading.mentions[0].family]
        if reading.mentions:
            return components_for([(m.family, m.copies) for m in reading.mentions], reading.on_top)
    return tier_family(families, tier or 1, int(request.get("seed") or 0))


# A support scaled smaller in x/y rarely has room for what stands on it (drawer_slide carrying
# peg_in_hole: 2 of 12 seeds do not fit at 0.6, none at 0.7).
ON_TOP_MIN_FOOTPRINT_SCALE = 0.7
_CHECKS = [
    "The script parses and build(seed, scale) runs in the sandbox for every variant.",
    "Every solid passes OCCT BRepCheck, is manifold, and its STL is watertight with consistent winding.",
    "The composed MJCF validates against MuJoCo's schema and compiles.",
    "1 s of simulation from rest: no warnings, finite state, small velocities, no deep penetration.",
    "The task's goal does not hold in the initial state, and the scripted oracle reaches it within the time limit.",
]
_GEOMETRY = [
    "Every part is one closed, manifold, non-self-intersecting solid in millimetres, placed in world "
    "coordinates with the table top at z = 0.",
    "Fixtures are fixed; free objects rest on or slightly above their support with no interpenetration.",
    "Dimensions are drawn from random.Random(seed) within the family's ranges and multiplied per axis "
    "by the scale vector.",
]


def _composition_plan(composition: Composition, by_name: dict[str, dict[str, Any]], req: dict[str, Any]) -> dict:
    fams = [by_name[f] for f in composition.families()]
    what = describe(composition, {f["name"]: f["title"] for f in fams})
    lo = tuple(max(f["scale_min"][i] for f in fams) for i in range(3))
    if any(c.on_top_of for c in composition.components):
        lo = (max(lo[0], ON_TOP_MIN_FOOTPRINT_SCALE), max(lo[1], ON_TOP_MIN_FOOTPRINT_SCALE), lo[2])
    hi = tuple(max(lo[i], min(f["scale_max"][i] for f in fams)) for i in range(3))
    return {
        "title": what,
        "family": None,
        "tier": req.get("tier") or max(f["tier"] for f in fams),
        "summary": (f"One scene composed of known families: {what}, for the request {req.get('prompt')!r}. "
                    "The task is every component's task: all their goals must hold."),
        "geometric_requirements": [
            composition.plan_line(),
            "Build each component with its family's script; prefix its part and site names with its label and "
            "an underscore; put a component marked on_top_of centred on the top face of that component's highest "
            "fixed part, every other one beside the components before it (+x, 40 mm clear) "
            "(benchgen_assets.scene: prefixed, beside, fitted_on_top, combine_scenes).",
            *(f"{f['name']}: {f['description']}" for f in fams),
            *_GEOMETRY,
        ],
        "learning_objectives": list(dict.fromkeys(f["learning_objective"] for f in fams)),
        "self_verification": [*_CHECKS, "The merged goal holds only once every component's goal holds."],
        "scale_limits": {"min": lo, "max": hi},
    }


@offline_role(PLANNER_ROLE)
def plan(request: OfflineRequest) -> str:
    data = request.input or {}
    families = data.get("known_families") or []
    if not families:
        raise ValueError("the planner input lists no known families")
    req = data.get("request") or {}
    fam = choose_family(req, families)
    if isinstance(fam, Composition):
        return json.dumps(_composition_plan(fam, {f["name"]: f for f in families}, req))
    tier = req.get("tier") or fam["tier"]
    what = f" for the request {req['prompt']!r}" if req.get("prompt") else ""
    return json.dumps({
        "title": fam["title"],
        "family": fam["name"],
        "tier": tier,
        "summary": f"{fam['description']} (tier {tier} {fam['name']} scenario{what}.)",
        "geometric_requirements": [fam["description"], *_GEOMETRY],
        "learning_objectives": [fam["learning_objective"]],
        "self_verification": _CHECKS,
        "scale_limits": _family_limits(fam).model_dump(mode="json"),
    })


def _source_for_plan(data: dict[str, Any]) -> tuple[str, str]:
    """(what it is, the script): the family's own script, or one composing the plan's components."""
    from benchgen_assets.families import FAMILIES, family_source

    plan_data = data.get("plan") or {}
    composition = composition_of(plan_data.get("geometric_requirements") or [])
    if composition is not None:
        name = "_and_".join(c.label for c in composition.components)
        return name, composed_script(composition, {f: family_source(f) for f in composition.families()}, name,
                                     {f: FAMILIES[f].scale_min for f in composition.families()})
    name = data.get("family") or plan_data.get("family")
    if name not in FAMILIES:
        tier = plan_data.get("tier") or 1
        name = sorted(n for n, f in FAMILIES.items() if f.tier == tier)[0]
    return name, family_source(name)


@offline_role(CODER_ROLE)
def code(request: OfflineRequest) -> str:
    data = request.input or {}
    family, source = _source_for_plan(data)
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

