"""The offline teacher's instruction parser: instruction text → task goals over typed entities.

A small rule-based reader of manipulation instructions ("put the cup in the drawer and close it",
"pick coke can from top drawer and place on counter"): clauses, verbs, objects, containers,
surfaces, appliances, pronouns. The words and what PAL v1 cannot do live in ``vocabulary``; a
clause with no PAL plan becomes a ``Skip`` with a reason code, never a guessed goal.
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel

from teacher_assets.bt.pal import infer_affordances

from .vocabulary import (CUTTING_TOOLS, INTO, ONTO, OPEN_CLOSE_BY_PUSH, PICK_VERBS, PLACE_VERBS, REMOVE_VERBS,
                         WIPING_TOOLS, Skip, unsupported_clause)

GoalKind = Literal["navigate", "pick", "place_on_top", "place_inside", "place_near_heating", "open", "close",
                   "toggle_on", "toggle_off", "soak_under", "soak_inside", "wipe", "cut", "release"]


class Goal(BaseModel):
    kind: GoalKind
    obj: str  # the object acted on (held object for place/soak/release; surface for wipe)
    target: Optional[str] = None  # destination, fluid source, surface being wiped/cut
    tool: Optional[str] = None  # held tool for wipe / cut
    source: Optional[str] = None  # where a picked object is taken from
    set_down: bool = False  # "take X off Y": X is put down afterwards (settled by the parser)
    clause: str


class ParsedInstruction(BaseModel):
    instruction: str
    goals: list[Goal] = []
    skips: list[Skip] = []  # clauses with no PAL v1 plan, and why
    notes: list[str] = []  # interpretations the plan rests on (recorded in the audit log)

    @property
    def feasible(self) -> bool:
        return bool(self.goals) and not self.skips

    @property
    def reason_codes(self) -> list[str]:
        return list(dict.fromkeys(s.reason_code for s in self.skips))

    def entities(self) -> list[str]:
        seen: dict[str, None] = {}
        for g in self.goals:
            for name in (g.obj, g.target, g.tool, g.source):
                if name:
                    seen[name] = None
        for skip in self.skips:  # "move the can near the orange": both are still in the scene
            for name in (skip.obj, skip.reference):
                if name:
                    seen[name] = None
        return list(seen)


_ARTICLES = re.compile(r"\b(the|a|an|some|this|that|these|those|its|his|her|their|my|your)\b")
_SPLIT = re.compile(r"\s*(?:,\s*and then|,\s*then|\band then\b|\bthen\b|;|,\s*and\b|,|\band\b|\bafter that\b)\s*")
_PRONOUNS = {"it", "them", "that", "this", "one"}


_RULES: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"^(?:go|navigate|move|walk|drive|head)\s+(?:over\s+)?(?:to|towards|toward)\s+(?P<obj>.+)$"), "navigate"),
    (re.compile(rf"^approach\s+(?P<obj>.+)$"), "navigate"),
    (re.compile(rf"^(?:turn|switch|toggle|power)\s+on\s+(?P<obj>.+)$"), "toggle_on"),
    (re.compile(rf"^(?:turn|switch|toggle|power)\s+(?P<obj>.+?)\s+on$"), "toggle_on"),
    (re.compile(rf"^(?:turn|switch|toggle|power)\s+off\s+(?P<obj>.+)$"), "toggle_off"),
    (re.compile(rf"^(?:turn|switch|toggle|power)\s+(?P<obj>.+?)\s+off$"), "toggle_off"),
    (re.compile(rf"^(?:start|activate)\s+(?P<obj>.+)$"), "toggle_on"),
    (re.compile(rf"^(?:stop|deactivate)\s+(?P<obj>.+)$"), "toggle_off"),
    (OPEN_CLOSE_BY_PUSH, "open_or_close"),
    (re.compile(rf"^open(?:\s+up)?\s+(?P<obj>.+)$"), "open"),
    (re.compile(rf"^(?:close|shut)\s+(?P<obj>.+)$"), "close"),
    (re.compile(rf"^(?:soak|wet|dampen|rinse|moisten|dip)\s+(?P<obj>.+?)\s+(?:under|beneath)\s+(?P<target>.+)$"), "soak_under"),
    (re.compile(rf"^(?:soak|wet|dampen|rinse|moisten|dip)\s+(?P<obj>.+?)\s+{INTO}\s+(?P<target>.+)$"), "soak_inside"),
    (re.compile(rf"^(?:wipe|clean|scrub|dust|polish)\s+(?P<target>.+?)\s+(?:with|using)\s+(?P<tool>.+)$"), "wipe"),
    (re.compile(rf"^(?:wipe|clean|scrub|dust|polish)\s+(?P<target>.+)$"), "wipe"),
    (re.compile(rf"^(?:use)\s+(?P<tool>.+?)\s+to\s+(?:wipe|clean|scrub)\s+(?P<target>.+)$"), "wipe"),
    (re.compile(rf"^(?:cut|slice|chop|dice|halve)\s+(?P<target>.+?)\s+(?:with|using)\s+(?P<tool>.+)$"), "cut"),
    (re.compile(rf"^(?:cut|slice|chop|dice|halve)\s+(?P<target>.+)$"), "cut"),
    (re.compile(rf"^(?:use)\s+(?P<tool>.+?)\s+to\s+(?:cut|slice|chop)\s+(?P<target>.+)$"), "cut"),
    (re.compile(rf"^(?:heat|warm|warm up|heat up)\s+(?P<obj>.+?)\s+(?:on|near|next to|over|with|using|in)\s+(?P<target>.+)$"), "place_near_heating"),
    (re.compile(rf"^(?:heat|warm|warm up|heat up)\s+(?P<obj>.+)$"), "place_near_heating"),
    # near a heating element (other "near"s are skipped by the vocabulary before the rules)
    (re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:next to|near|beside|by|close to)\s+(?P<target>.+)$"), "place"),
    # "… and place on counter": the object is the one just handled
    (re.compile(rf"^{PLACE_VERBS}\s+(?:it\s+)?(?:back\s+)?{INTO}\s+(?P<target>.+)$"), "place_inside"),
    (re.compile(rf"^{PLACE_VERBS}\s+(?:it\s+)?(?:back\s+)?{ONTO}\s+(?P<target>.+)$"), "place_on_top"),
    (re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:back\s+)?{INTO}(?:\s+(?P<target>.+))?$"), "place_inside"),
    (re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:back\s+)?{ONTO}\s+(?P<target>.+)$"), "place_on_top"),
    (re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:back\s+)?(?:to|towards)\s+(?P<target>.+)$"), "place"),
    (re.compile(rf"^{PICK_VERBS}\s+(?P<obj>.+?)\s+(?:and\s+)?{PLACE_VERBS}?\s*(?:it\s+)?{INTO}\s+(?P<target>.+)$"), "place_inside"),
    (re.compile(rf"^(?:drop|release|let go of|let go)\s*(?P<obj>.*)$"), "release"),
    (re.compile(rf"^{REMOVE_VERBS}\s+(?P<obj>.+?)\s+(?:off(?: of)?|out of|away from)\s+(?P<source>.+)$"), "remove"),
    (re.compile(rf"^remove\s+(?P<obj>.+?)\s+from\s+(?P<source>.+)$"), "remove"),
    (re.compile(rf"^{PICK_VERBS}\s+(?P<obj>.+?)\s+(?:up\s+)?(?:from|off|out of)\s+(?P<source>.+)$"), "pick"),
    (re.compile(rf"^{PICK_VERBS}\s+(?P<obj>.+?)(?:\s+up)?$"), "pick"),
]


_PART_WORDS = {"element", "handle", "edge", "side", "corner", "surface", "part", "piece", "middle", "center"}
_LOCATION = re.compile(r"\s+(?:on|in|at|inside|from|near|under|next to|beside|over|above|below|behind)\s+.*$")


def object_phrase(phrase: str) -> str:
    """'the bread on the cutting board' → 'the bread'; 'the heating element of the stove' → 'the stove'."""
    phrase = _LOCATION.sub("", phrase)
    head, sep, owner = phrase.partition(" of ")
    if sep and set(head.split()) & _PART_WORDS:
        return owner
    return head


def snake(phrase: str) -> str:
    words = _ARTICLES.sub(" ", phrase.lower())
    words = re.sub(r"[^a-z0-9 ]+", " ", words)
    words = re.sub(r"\b(up|please|carefully|gently|slowly|again|back|away|down|out)\b", " ", words)
    return "_".join(words.split())


def ground(name: str, known_objects: tuple[str, ...]) -> str:
    """The scene object a phrase names: 'desk_lamp' → 'lamp', 'top_drawer' → 'drawer' when those are known."""
    if not known_objects or name in known_objects:
        return name
    tokens = name.split("_")
    candidates = [k for k in known_objects if set(k.split("_")) <= set(tokens)]
    if not candidates:
        return name
    return max(candidates, key=lambda k: (len(k.split("_")), k.split("_")[-1] == tokens[-1]))


# What a goal's destination must afford; an unknown name falls back to the scene object that does.
_NEEDS = {"soak_under": "fluid_source", "soak_inside": "container", "place_inside": "container",
          "place_near_heating": "heat_source"}


def _afforded(name: Optional[str], need: str) -> bool:
    aff = infer_affordances(name or "")
    return bool(getattr(aff, need)) or (need == "container" and aff.openable)


def is_openable(name: str) -> bool:
    return infer_affordances(name).openable


def is_heat_source(name: str) -> bool:
    return infer_affordances(name).heat_source


def _is_tool(name: str, tools: tuple[str, ...]) -> bool:
    return any(t in name.split("_") for t in tools)


# What a goal's objects must afford for its primitive to apply at all.
_OBJECT_NEEDS = {"pick": "graspable", "place_on_top": "graspable", "place_inside": "graspable",
                 "place_near_heating": "graspable", "soak_under": "graspable", "soak_inside": "graspable",
                 "release": "graspable", "open": "openable", "close": "openable", "toggle_on": "toggleable",
                 "toggle_off": "toggleable"}


def _unafforded(goal: Goal) -> Optional[Skip]:
    """A goal whose object cannot take its primitive ("open the can", "pick up the table")."""
    checks = [(goal.obj, _OBJECT_NEEDS.get(goal.kind)), (goal.target, _NEEDS.get(goal.kind))]
    if goal.kind == "cut":
        checks.append((goal.tool, "slicer"))
    for name, need in checks:
        if name and need and not _afforded(name, need):
            what = {"graspable": "cannot be picked up", "openable": "cannot be opened or closed",
                    "toggleable": "cannot be switched on or off", "container": "is no container",
                    "fluid_source": "gives no fluid", "heat_source": "is no heating element",
                    "slicer": "cannot cut"}[need]
            return Skip(code="unafforded_object", detail=f"{need}", clause=goal.clause, obj=name,
                        reason=f"{name} {what} (PAL v1 affordance lexicon), so '{goal.clause}' has no PAL plan")
    return None


def _set_down_surface(obj: str, source: Optional[str], known_objects: tuple[str, ...]) -> Optional[str]:
    """Where a removed object goes when the instruction does not say: a fixed support surface of the scene."""
    return next((o for o in known_objects if o not in (obj, source) and infer_affordances(o).surface
                 and not infer_affordances(o).graspable), None)


def parse_instruction(text: str, *, known_objects: tuple[str, ...] = ()) -> ParsedInstruction:
    """Goals in instruction order; clauses no primitive can do are skipped with a reason, never guessed."""
    clean = " ".join(text.strip().lower().replace("\n", " ").split()).rstrip(".!?")
    parsed = ParsedInstruction(instruction=text.strip())
    if not clean:
        parsed.skips.append(Skip(code="empty_instruction", detail="empty", clause="", reason="the instruction is empty"))
        return parsed
    name_of = lambda phrase: ground(snake(object_phrase(phrase)), known_objects)  # noqa: E731
    last_object: Optional[str] = None  # the last thing handled (pronoun target for place verbs)
    last_fixture: Optional[str] = None  # the last container/appliance (pronoun target for open/close/toggle)
    for clause in (c.strip() for c in _SPLIT.split(clean)):
        if not clause:
            continue
        skip = unsupported_clause(
            clause, object_name=name_of, is_heat_source=is_heat_source,
            is_surface_or_container=lambda n: _afforded(n, "surface") or _afforded(n, "container"))
        if skip is not None:
            if skip.obj in _PRONOUNS:  # "pick up the can and move it near the apple"
                skip.obj = last_object
            parsed.skips.append(skip)
            continue
        goal = _match_clause(clause)
        if goal is None:
            parsed.skips.append(Skip(code="unparsed_clause", detail=clause.split()[0], clause=clause,
                                     reason=f"no PAL v1 primitive maps to '{clause}'"))
            continue
        fixture_verb = goal.kind in ("open", "close", "toggle_on", "toggle_off")
        for field in ("obj", "target", "tool", "source"):
            value = getattr(goal, field)
            if value in _PRONOUNS or value == "" or (field == "target" and value is None and goal.kind == "place_inside"):
                prefer_fixture = fixture_verb or field == "target"
                resolved = (last_fixture if prefer_fixture else last_object) or last_object or last_fixture
                setattr(goal, field, resolved)
            elif value:
                setattr(goal, field, ground(value, known_objects))
        need = _NEEDS.get(goal.kind)
        if need and goal.target and not _afforded(goal.target, need):
            options = ([last_fixture] if last_fixture else []) + list(known_objects)
            goal.target = next((o for o in options if _afforded(o, need)), goal.target)
        if goal.kind == "wipe" and not goal.tool:
            goal.tool = next((o for o in known_objects if _is_tool(o, WIPING_TOOLS)), "cloth")
        if goal.kind == "cut" and not goal.tool:
            goal.tool = next((o for o in known_objects if _is_tool(o, CUTTING_TOOLS)), "knife")
        if goal.kind == "place_near_heating" and not goal.target:
            goal.target = "stove"
        if goal.kind == "release" and not goal.obj:
            goal.obj = last_object
        if not goal.obj:
            parsed.skips.append(Skip(code="unparsed_clause", detail=clause.split()[0], clause=clause,
                                     reason=f"'{clause}' names no object to act on"))
            continue
        unafforded = _unafforded(goal)
        if unafforded is not None:
            parsed.skips.append(unafforded)
            continue
        parsed.goals.append(goal)
        if fixture_verb:
            last_fixture = goal.obj
        else:
            last_object = goal.obj if goal.kind not in ("wipe", "cut") else goal.tool
            if goal.target and (is_openable(goal.target) or infer_affordances(goal.target).toggleable):
                last_fixture = goal.target
    _settle_removals(parsed, known_objects)
    return parsed


def _settle_removals(parsed: ParsedInstruction, known_objects: tuple[str, ...]) -> None:
    """'Take the lid off the pot': set the lid down unless a later clause says where it goes."""
    for i, goal in enumerate(parsed.goals):
        if not goal.set_down:
            continue
        goal.set_down = False
        if any(later.obj == goal.obj for later in parsed.goals[i + 1:]):
            continue
        surface = _set_down_surface(goal.obj, goal.source, known_objects)
        if surface is None:
            parsed.notes.append(f"'{goal.clause}': no support surface in the scene to set {goal.obj} down on; "
                                f"the plan ends holding it")
            continue
        goal.kind, goal.target = "place_on_top", surface
        parsed.notes.append(f"'{goal.clause}': {goal.obj} is set down on {surface} (the scene's support surface; "
                            "the instruction does not say where)")


def _match_clause(clause: str) -> Optional[Goal]:
    for pattern, kind in _RULES:
        m = pattern.match(clause)
        if not m:
            continue
        groups = {k: snake(object_phrase(v)) if v is not None else None for k, v in m.groupdict().items()}
        target, tool = groups.get("target"), groups.get("tool")
        if kind == "open_or_close":  # "push the drawer closed", "slide the door open"
            kind = "open" if m.group("state") in ("open", "out") else "close"
            return Goal(kind=kind, obj=groups["obj"], clause=clause)
        if kind == "remove":
            return Goal(kind="pick", obj=groups["obj"], source=groups["source"], set_down=True, clause=clause)
        if kind == "place":  # "move X to / near Y": near a heat source, inside a container, else on top
            aff = infer_affordances(target or "")
            kind = ("place_near_heating" if aff.heat_source else
                    "place_inside" if aff.container and not aff.surface else "place_on_top")
        elif kind in ("place_on_top", "place_inside") and is_heat_source(target or ""):
            kind = "place_near_heating"  # "put the pot on the stove": the PAL primitive for heating
        if kind in ("wipe", "cut"):  # the acted-on thing is the surface/food; the hand holds the tool
            return Goal(kind=kind, obj=target or "", target=target, tool=tool, clause=clause)
        return Goal(kind=kind, obj=groups.get("obj") or "", target=target, tool=tool, source=groups.get("source"),
                    clause=clause)
    return None
