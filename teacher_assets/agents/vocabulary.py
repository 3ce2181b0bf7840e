"""The teacher's instruction vocabulary: verbs it maps to PAL v1, and what it refuses, with reason codes.

One place for the words. ``instruction_parser`` turns clauses into goals with these verb tables;
``unsupported_clause`` says why a clause has no PAL v1 plan. The families follow the Open
X-Embodiment datasets: RT-1 / fractal ("pick X", "move X near Y", "knock X over", "place X
upright", "open the middle drawer", "pick X from the top drawer and place on counter"), Bridge
("put X in the pot", "take the lid off the pot", "flip the pot upright", "sweep …"), Taco Play
("lift the red block", "push the sliding door", "rotate the block") and Language Table
("push the red star to the top left corner", "move the blue cube next to the green circle").

Decisions (PAL v1 has GRASP, PLACE_ON_TOP, PLACE_INSIDE, PLACE_NEAR_HEATING_ELEMENT, OPEN, CLOSE,
TOGGLE_*, SOAK_*, WIPE, CUT, NAVIGATE_TO, RELEASE — and nothing else):

* No approximations of a goal PAL cannot state. "Move X near Y" is not PLACE_ON_TOP Y (that is a
  different end state), nor GRASP + RELEASE next to Y (RELEASE lets go wherever the hand is, which
  PAL does not tie to Y): it is skipped as ``unsupported_relation:near``. The same holds for left
  of / right of / in front of / behind / between / under, and for places that are not objects
  ("the top left corner"). The one "near" PAL has is near a heating element.
* Non-prehensile motions (push, slide, sweep, knock over) and reorientation (flip, rotate,
  upright, upside down) have no primitive: ``unsupported_verb:<verb>`` /
  ``unsupported_orientation:<word>``. Exceptions that are plain PAL: pushing / sliding a drawer
  or door closed or open (CLOSE / OPEN).
* "Move / put X to Y" is PLACE_ON_TOP Y for a surface, PLACE_INSIDE Y for a container; for any
  other Y "to" means next to it (RT-1 "move the coke can to the apple"): ``unsupported_relation:near``.
* "Take the lid off the pot" ends with the lid set down: on a support surface of the scene when
  there is one (recorded as an interpretation note), else kept in hand (also noted).
"""

from __future__ import annotations

import re
from typing import Literal, Optional

from pydantic import BaseModel

SkipCode = Literal["unsupported_verb", "unsupported_orientation", "unsupported_relation", "unafforded_object",
                   "unparsed_clause", "empty_instruction"]


class Skip(BaseModel):
    """Why (part of) an instruction has no PAL v1 plan. ``reason_code`` is ``code:detail``."""

    code: SkipCode
    detail: str  # the verb, orientation word or relation ("knock_over", "upright", "near", "left_of")
    clause: str
    reason: str
    obj: Optional[str] = None  # for relations: the object to be moved …
    reference: Optional[str] = None  # … and the object it should end up relative to

    @property
    def reason_code(self) -> str:
        return f"{self.code}:{self.detail}"


# ---------------------------------------------------------------------------------- verbs → PAL
PLACE_VERBS = r"(?:put|place|set|move|transfer|drop|stack|return|load|store|hang|lay|leave|throw|toss|insert|bring)"
PICK_VERBS = r"(?:pick up|pick|grab|grasp|take|lift|get|collect|hold|retrieve|fetch)"
REMOVE_VERBS = r"(?:take|remove|lift|get|pull)"  # "take the lid off the pot"
ONTO = r"(?:on top of|onto|on|upon|over)"
INTO = r"(?:inside of|inside|into|in)"

WIPING_TOOLS = ("sponge", "rag", "cloth", "towel", "paper_towel", "brush", "wipe")
CUTTING_TOOLS = ("knife", "scissors", "cleaver")

# ------------------------------------------------------------------------------- what PAL cannot do
def _verb(forms: str) -> str:
    """A verb where a clause's verb stands (its start, or after "to" / "then" / "please"), so that the
    nouns "screw", "hammer", "iron" or a "sliding door" are not read as the verb."""
    return rf"(?:^|\bto\s+|\bthen\s+|\bplease\s+)(?:{forms})\b"


# Verbs no PAL v1 primitive can do: (detail, pattern over the clause, reason). Checked per clause,
# after the few PAL forms they overlap with ("push the drawer closed", "turn on …").
_NON_PREHENSILE = ("pushing moves an object without grasping it; PAL v1 moves objects only by GRASP then "
                   "PLACE_ON_TOP / PLACE_INSIDE, and cannot state a pushed end pose")
UNSUPPORTED_VERBS: list[tuple[str, str, str]] = [
    ("knock_over", _verb(r"knock\w*|topple\w*") + "|" + _verb(r"tip\w*|push\w*") + r"(?=.*\bover\b)",
     "knocking an object over needs a strike or push that tips it; PAL v1 has no toppling primitive"),
    ("flip", _verb(r"flip\w*|invert\w*") + "|" + _verb(r"turn\w*") + r"(?=\s+over\b|.*\bover$)",
     "flipping reorients an object; PAL v1 places objects but never sets their orientation"),
    ("rotate", _verb(r"rotat\w*|spin\w*|twist\w*") + "|" + _verb(r"turn\w*") + r"(?!\s+(?:on|off)\b)"
               r"(?=.*\b(?:left|right|clockwise|counterclockwise|anticlockwise|around|sideways|front|back)\b)",
     "rotating an object in place needs an orientation goal; PAL v1 has none"),
    ("push", _verb(r"push\w*|shove\w*|nudge\w*|poke\w*"), _NON_PREHENSILE),
    ("slide", _verb(r"slid\w*|drag\w*"), _NON_PREHENSILE),
    ("sweep", _verb(r"sweep\w*|swept"),
     "sweeping gathers loose objects with a tool in a continuous motion; WIPE cleans a surface but moves nothing"),
    ("press", _verb(r"press\w*|click\w*"),
     "pressing a button has an effect PAL must name as TOGGLE_ON or TOGGLE_OFF, and the instruction names neither"),
    ("arrange", _verb(r"separat\w*|arrang\w*|line up|align\w*|sort\w*|group\w*|spread\w*|scatter\w*|cluster\w*")
     + r"|\btogether\b|\bin an? (?:line|row|column|circle|pile|square|triangle)\b",
     "arranging objects into a formation needs spatial relations between them that PAL v1 cannot express"),
    ("touch", _verb(r"touch\w*|point\w*|wave\w*|shake\w*|squeeze\w*"),
     "touching, pointing, waving, shaking or squeezing has no PAL v1 primitive"),
    ("cook", _verb(r"cook\w*|fr(?:y|ies|ied|ying)|bak(?:e|es|ed|ing)|boil\w*"),
     "cooking needs heat control and recipes no PAL primitive provides"),
    ("fold", _verb(r"(?:un)?fold\w*"), "folding or unfolding a deformable object has no PAL primitive"),
    ("screw", _verb(r"(?:un)?screw\w*"), "screwing needs a twisting motion no PAL primitive provides"),
    ("pour", _verb(r"pour\w*"), "pouring needs controlled tilting of a held container; PAL v1 has no POUR"),
    ("tie", _verb(r"ti(?:e|es|ed|ing)"), "tying knots has no PAL primitive"),
    ("stir", _verb(r"stir\w*"), "stirring needs a continuous tool motion no PAL primitive provides"),
    ("peel", _verb(r"peel\w*"), "peeling has no PAL primitive"),
    ("sew", _verb(r"sew\w*"), "sewing has no PAL primitive"),
    ("assemble", _verb(r"assembl\w*"), "assembly needs insertion and fastening no PAL primitive provides"),
    ("hammer", _verb(r"hammer\w*"), "hammering has no PAL primitive"),
    ("iron", _verb(r"iron(?:s|ed|ing)?"), "ironing has no PAL primitive"),
    ("type", _verb(r"typ(?:e|es|ed|ing)"), "typing has no PAL primitive"),
    ("write", _verb(r"writ\w*|draw(?:s|ing)?"), "writing or drawing has no PAL primitive"),
    ("knead", _verb(r"knead\w*"), "kneading has no PAL primitive"),
]

# "push the drawer closed", "slide the door open": plain OPEN / CLOSE, not a push.
OPEN_CLOSE_BY_PUSH = re.compile(r"^(?:push|pull|slide|shove)\s+(?P<obj>.+?)\s+(?P<state>closed|shut|in|open|out)$")

ORIENTATION_WORDS = re.compile(r"\b(?P<word>upright|upside[- ]down|on (?:its|their) side|standing up|stand up|"
                               r"vertical(?:ly)?|horizontal(?:ly)?|face (?:up|down))\b")

# Spatial relations PAL v1 cannot put an object into (only on top of, inside, near a heating element).
RELATIONS: list[tuple[str, str]] = [
    ("left_of", r"(?:to |on |at )?(?:the )?left(?: hand)?(?: side)? of"),
    ("right_of", r"(?:to |on |at )?(?:the )?right(?: hand)?(?: side)? of"),
    ("in_front_of", r"(?:in |at the )?front of"),
    ("behind", r"behind|in back of|at the back of"),
    ("between", r"(?:in )?between"),
    ("near", r"next to|near(?:by)?|beside|besides|by|close to|closer to|alongside|adjacent to|towards?|"
             r"in the direction of"),
    ("under", r"under(?:neath)?|below|beneath"),
    ("above", r"above"),
    ("away_from", r"away from|far from"),
    ("around", r"around|surrounding"),
]
_RELATION = "|".join(f"(?P<{name}>{pattern})" for name, pattern in RELATIONS)
_RELATION_CLAUSE = re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:{_RELATION})\s+(?P<reference>.+)$")

# Places that are not objects: "the top left corner", "the middle of the table", "the left".
REGION_WORDS = ("left", "right", "top", "bottom", "center", "centre", "middle", "corner", "edge", "side", "front",
                "back", "upper", "lower", "far", "near", "rear")
_REGION = (rf"(?:the\s+)?(?:{'|'.join(REGION_WORDS)})(?:\s+(?:{'|'.join(REGION_WORDS)}|part|area|region))*"
           r"(?:\s+of\b.*)?")
_REGION_CLAUSE = re.compile(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:to|on|in|at|into|onto|toward|towards)\s+(?P<region>{_REGION})$")


def is_region_word(token: str) -> bool:
    return token in REGION_WORDS


def unsupported_clause(clause: str, *, is_heat_source, is_surface_or_container, object_name) -> Optional[Skip]:
    """Why this (lower-case) clause has no PAL v1 plan, or None when it may have one.

    The affordance predicates and ``object_name`` (phrase → snake-case object) come from the
    parser, so the two agree on what "the stove" is."""
    if OPEN_CLOSE_BY_PUSH.match(clause):
        return None
    for detail, pattern, reason in UNSUPPORTED_VERBS:
        m = re.search(pattern, clause)
        if m:
            return Skip(code="unsupported_verb", detail=detail, clause=clause,
                        reason=f"'{m.group(0).strip()}': {reason}")
    m = ORIENTATION_WORDS.search(clause)
    if m:
        word = "_".join(m.group("word").replace("-", " ").split())
        return Skip(code="unsupported_orientation", detail=word, clause=clause,
                    reason=f"'{m.group('word')}': PLACE_ON_TOP / PLACE_INSIDE set where an object goes, not its "
                           "orientation; no PAL v1 primitive can make it so")
    m = _RELATION_CLAUSE.match(clause)
    if m:
        relation = next(name for name, _ in RELATIONS if m.group(name))
        reference = object_name(m.group("reference"))
        if relation == "near" and is_heat_source(reference):
            return None  # PLACE_NEAR_HEATING_ELEMENT says exactly this
        return Skip(code="unsupported_relation", detail=relation, clause=clause, obj=object_name(m.group("obj")),
                    reference=reference,
                    reason=f"'{m.group(relation)} {m.group('reference')}': PAL v1 can put an object on top of or "
                           f"inside {reference}, not {relation.replace('_', ' ')} it; PLACE_ON_TOP {reference} "
                           "would be a different task")
    m = _REGION_CLAUSE.match(clause)
    if m and not re.search(r"\bon top of\b", clause):  # "on top of X" is PLACE_ON_TOP X
        return Skip(code="unsupported_relation", detail="region", clause=clause, obj=object_name(m.group("obj")),
                    reason=f"'{m.group('region')}' is a place in the workspace, not an object; PAL v1 places only "
                           "on top of or inside an object (or near a heating element)")
    m = re.match(rf"^{PLACE_VERBS}\s+(?P<obj>.+?)\s+(?:back\s+)?(?:to)\s+(?P<reference>.+)$", clause)
    if m:
        reference = object_name(m.group("reference"))
        if not (is_heat_source(reference) or is_surface_or_container(reference)):
            return Skip(code="unsupported_relation", detail="near", clause=clause, obj=object_name(m.group("obj")),
                        reference=reference,
                        reason=f"'to {m.group('reference')}': {reference} is neither a surface nor a container, so "
                               f"'to' means next to it; PAL v1 has no primitive that places near {reference}")
    return None
