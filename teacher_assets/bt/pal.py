"""PAL v1: the 14 symbolic action primitives a teacher tree may use, with ports and rules.

The primitives, their preconditions and effects follow BEHAVIOR-1K's symbolic semantic action
primitives (DESIGN.md "PAL v1"):

* every primitive but RELEASE takes exactly one input port, ``obj`` (the object it acts on);
  RELEASE takes none. No other port exists — in particular no ``timeout_ms``.
* GRASP, OPEN, CLOSE, TOGGLE_ON, TOGGLE_OFF need an empty hand.
* PLACE_ON_TOP, PLACE_INSIDE, PLACE_NEAR_HEATING_ELEMENT, RELEASE, SOAK_UNDER, SOAK_INSIDE, WIPE,
  CUT need a held object. As in BEHAVIOR-1K, a PLACE_* lets go of the object: the hand is empty
  afterwards, so a RELEASE right after a PLACE_* is a precondition violation.

``infer_affordances(name)`` maps an object name (``red_cup``, ``kitchen_drawer_1``) to what it
affords (graspable, openable, container, toggleable, fluid source, heat source, slicer, wiping
tool, wipeable, cuttable …) from a small keyword lexicon. The symbolic executor and the offline
planner share it so they agree on what e.g. "drawer" or "knife" can do.

Public API: ``PAL_V1`` (name → ``PalPrimitive``), ``PAL_ACTIONS`` (ordered names),
``Affordances``, ``infer_affordances``, ``MAX_LOOP_COUNT``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

HandRequirement = Literal["empty", "holding", "any"]


class PalPrimitive(BaseModel):
    name: str
    ports: tuple[str, ...]  # input ports; ("obj",) for all but RELEASE
    hand: HandRequirement  # what the hand must be before the action
    description: str  # one line used in prompts


# Retry / repeat counts above this are treated as unbounded (trees must terminate).
MAX_LOOP_COUNT = 10

_PRIMITIVES = [
    PalPrimitive(name="GRASP", ports=("obj",), hand="empty",
                 description="Pick up obj (hand must be empty; obj must be graspable and not inside a closed container)."),
    PalPrimitive(name="PLACE_ON_TOP", ports=("obj",), hand="holding",
                 description="Put the held object on top of obj and let go (hand is empty afterwards; no RELEASE needed)."),
    PalPrimitive(name="PLACE_INSIDE", ports=("obj",), hand="holding",
                 description="Put the held object inside container obj and let go (obj must be open if it opens)."),
    PalPrimitive(name="OPEN", ports=("obj",), hand="empty",
                 description="Open the openable obj (drawer, cabinet, door, fridge …); hand must be empty."),
    PalPrimitive(name="CLOSE", ports=("obj",), hand="empty",
                 description="Close the openable obj; hand must be empty."),
    PalPrimitive(name="NAVIGATE_TO", ports=("obj",), hand="any",
                 description="Move the robot base next to obj so it is within reach."),
    PalPrimitive(name="RELEASE", ports=(), hand="holding",
                 description="Let go of the held object where it is (no ports; hand must hold something)."),
    PalPrimitive(name="TOGGLE_ON", ports=("obj",), hand="empty",
                 description="Switch on the toggleable obj (lamp, stove, faucet …); hand must be empty."),
    PalPrimitive(name="TOGGLE_OFF", ports=("obj",), hand="empty",
                 description="Switch off the toggleable obj; hand must be empty."),
    PalPrimitive(name="SOAK_UNDER", ports=("obj",), hand="holding",
                 description="Soak the held object under the fluid source obj (faucet); the source must be toggled on."),
    PalPrimitive(name="SOAK_INSIDE", ports=("obj",), hand="holding",
                 description="Soak the held object inside the fluid container obj (bowl, sink, bucket)."),
    PalPrimitive(name="WIPE", ports=("obj",), hand="holding",
                 description="Wipe obj with the held object (sponge, towel, rag)."),
    PalPrimitive(name="CUT", ports=("obj",), hand="holding",
                 description="Cut obj with the held slicing tool (knife)."),
    PalPrimitive(name="PLACE_NEAR_HEATING_ELEMENT", ports=("obj",), hand="holding",
                 description="Put the held object near the heating element obj (stove, oven, toaster) and let go."),
]

PAL_V1: dict[str, PalPrimitive] = {p.name: p for p in _PRIMITIVES}
PAL_ACTIONS: tuple[str, ...] = tuple(p.name for p in _PRIMITIVES)


class Affordances(BaseModel):
    graspable: bool = True
    openable: bool = False
    container: bool = False  # things can be put inside
    surface: bool = False  # things can be put on top
    toggleable: bool = False
    fluid_source: bool = False
    heat_source: bool = False
    slicer: bool = False
    wiper: bool = False  # a tool WIPE can be done with (sponge, rag …)
    wipeable: bool = False  # a surface or residue WIPE can act on
    cuttable: bool = False  # food or soft material CUT can act on


# Keyword lexicon (matched against the name's tokens); order inside a set is irrelevant.
_FIXED = {"table", "counter", "countertop", "shelf", "desk", "drawer", "cabinet", "cupboard", "fridge",
          "refrigerator", "oven", "stove", "cooktop", "burner", "sink", "faucet", "tap", "door", "microwave",
          "dishwasher", "wall", "floor", "window", "lamp", "light", "switch", "heater", "grill", "bed", "sofa",
          "stovetop", "lightbulb", "bulb", "led"}
_OPENABLE = {"drawer", "cabinet", "cupboard", "fridge", "refrigerator", "oven", "microwave", "dishwasher",
             "door", "box", "jar", "lid", "laptop", "bottle", "window"}
_CONTAINER = {"drawer", "cabinet", "cupboard", "fridge", "refrigerator", "oven", "microwave", "dishwasher",
              "box", "jar", "bowl", "basket", "bin", "bucket", "pot", "pan", "sink", "mug", "cup", "glass",
              "bag", "crate", "container", "tub", "kettle", "colander", "rack"}
_SURFACE = {"table", "counter", "countertop", "shelf", "desk", "tray", "plate", "board", "stove", "cooktop",
            "mat", "cabinet", "dishwasher", "bed", "sofa", "chair", "stool", "platform", "stovetop", "rack"}
_TOGGLEABLE = {"lamp", "light", "stove", "cooktop", "burner", "oven", "microwave", "faucet", "tap", "switch",
               "fan", "tv", "television", "kettle", "toaster", "radio", "heater", "grill", "blender", "dishwasher",
               "stovetop", "lightbulb", "bulb", "led"}
_FLUID_SOURCE = {"faucet", "tap", "sink"}
_HEAT_SOURCE = {"stove", "cooktop", "burner", "oven", "toaster", "heater", "grill", "microwave", "stovetop"}
_SLICER = {"knife", "cutter", "scissors", "blade", "slicer", "cleaver"}

# What WIPE and CUT need (held tool, target). Every surface is wipeable; residues are wipeable but
# cannot be picked up.
_WIPER = {"sponge", "rag", "cloth", "towel", "napkin", "tissue", "brush", "scrubber", "duster", "mop", "wipe"}
_WIPEABLE = {"floor", "wall", "window", "mirror", "sink", "door", "spill", "stain", "mess", "dirt", "dust",
             "crumbs", "smudge"}
_RESIDUE = {"spill", "stain", "mess", "dirt", "dust", "crumbs", "smudge"}
_CUTTABLE = {"bread", "loaf", "baguette", "apple", "banana", "orange", "lemon", "lime", "tomato", "potato", "carrot",
             "cucumber", "onion", "pepper", "jalapeno", "lettuce", "cabbage", "melon", "watermelon", "pear", "peach",
             "mango", "avocado", "cake", "pie", "pizza", "cheese", "butter", "sausage", "ham", "meat", "steak",
             "tofu", "fruit", "vegetable", "sandwich", "dough", "paper", "rope", "string", "tape", "ribbon"}


def name_tokens(name: str) -> list[str]:
    """``"Kitchen-Drawer_2"`` → ``["kitchen", "drawer"]`` (lower case, digits dropped)."""
    return [t for t in re.split(r"[^a-z]+", name.lower()) if t]


def infer_affordances(name: str) -> Affordances:
    """What an object affords, judged by the head noun of its name (its last lexicon token)."""
    tokens = name_tokens(name)
    known = _FIXED | _OPENABLE | _CONTAINER | _SURFACE | _TOGGLEABLE | _FLUID_SOURCE | _HEAT_SOURCE | _SLICER \
        | _WIPER | _WIPEABLE | _CUTTABLE
    # "cutting_board" is a board, "sponge_bowl" a bowl: the last known token is the head noun.
    head = next((t for t in reversed(tokens) if t in known), None)
    if head is None:
        return Affordances()
    return Affordances(
        graspable=head not in _FIXED and head not in _RESIDUE,
        openable=head in _OPENABLE,
        container=head in _CONTAINER,
        surface=head in _SURFACE,
        toggleable=head in _TOGGLEABLE,
        fluid_source=head in _FLUID_SOURCE,
        heat_source=head in _HEAT_SOURCE,
        slicer=head in _SLICER,
        wiper=head in _WIPER,
        wipeable=head in _SURFACE or head in _WIPEABLE,
        cuttable=head in _CUTTABLE,
    )
