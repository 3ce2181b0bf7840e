"""The symbolic world a teacher tree is run against: the episode's objects and the PAL v1 rules.

The world holds only the objects the EPISODE has (``world_for_episode``): a tree that names
anything else fails with ``unknown_object``, however plausible the name. Objects carry
affordances (``pal.infer_affordances`` unless given), open/closed, on/off, soaked, wiped, cut,
and a location relation (``on_top``/``inside``/``near``/``released`` + target, or ``held``); the
robot has a hand (``held``) and a base position (``robot_at``). Defaults: openables closed,
toggleables off, nothing held, the robot next to nothing.

Reachability (what NAVIGATE_TO does). ``NAVIGATE_TO x`` puts the base next to ``x``
(``robot_at``) and so next to what ``x`` rests on or in at that moment (``robot_site``: the tray
under the cup, the drawer the block lies in). From there the robot reaches those two spots,
whatever rests on or in either of them (the other things on the tray or in the drawer), and
always the object in its hand (it moves with the robot). Picking ``x`` up does not move the
base. Navigating elsewhere invalidates the rest: what was reachable from the old spot is out of
reach unless the same rules hold from the new one. Every PAL action with an ``obj`` but
NAVIGATE_TO needs that object reachable — a PLACE_* its destination, WIPE/CUT/SOAK_* the thing
acted on — else ``not_reachable``.

Precondition violations (codes): ``unknown_object``, ``missing_obj``, ``not_reachable``,
``hand_not_empty``, ``hand_empty``, ``same_object``, ``not_graspable``, ``inside_closed_container``,
``not_openable``, ``not_toggleable``, ``not_a_container``, ``container_closed``,
``not_a_fluid_source``, ``source_off``, ``not_a_heat_source``, ``not_wipeable`` (WIPE on something
that is neither a surface nor a residue), ``held_not_wiper`` (WIPE without a sponge/rag/cloth …
in hand), ``not_cuttable`` (CUT on something that is not food or soft material),
``held_not_slicer`` (CUT without a knife/scissors … in hand). A violation changes nothing.

Guard conditions (``conditions.py``) are answered by ``SymbolicWorld.holds``; asking about an
object the episode lacks is an ``unknown_object`` violation too.

Public API: ``SymbolicWorld``, ``WorldObject``, ``Violation``, ``world_for_objects``,
``world_for_episode``, ``TOOL_USES`` (what WIPE / CUT need of their target and held tool).
"""

from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple

from pydantic import BaseModel, Field

from .pal import PAL_V1, Affordances, infer_affordances

_RESTING = ("on_top", "inside", "near", "released")


class _ToolUse(NamedTuple):
    """What WIPE / CUT need: an affordance of the target and of the held tool, and the flag they set."""

    target: str
    target_code: str
    target_needs: str
    tool: str
    tool_code: str
    tool_needs: str
    effect: str


TOOL_USES = {
    "WIPE": _ToolUse("wipeable", "not_wipeable", "is neither a surface nor a residue that can be wiped",
                     "wiper", "held_not_wiper", "sponge, rag or cloth", "wiped"),
    "CUT": _ToolUse("cuttable", "not_cuttable", "is not food or soft material that can be cut",
                    "slicer", "held_not_slicer", "slicing tool (knife, scissors …)", "cut"),
}


class WorldObject(BaseModel):
    name: str
    affordances: Affordances
    is_open: bool = False
    toggled_on: bool = False
    soaked: bool = False
    wiped: bool = False
    cut: bool = False
    relation: str | None = None  # on_top | inside | near | released | held
    relation_target: str | None = None


class Violation(BaseModel):
    code: str
    message: str
    action: str
    obj: str | None = None
    path: str = ""


class SymbolicWorld(BaseModel):
    objects: dict[str, WorldObject] = Field(default_factory=dict)
    held: str | None = None
    robot_at: str | None = None  # the object the robot last navigated to
    robot_site: str | None = None  # what that object rested on or in when the robot got there
    # Objects the instruction names but the episode's scene lacks (named in unknown_object messages).
    absent: list[str] = Field(default_factory=list)

    def _container_of(self, name: str) -> WorldObject | None:
        o = self.objects[name]
        if o.relation == "inside" and o.relation_target in self.objects:
            return self.objects[o.relation_target]
        return None

    def _rests_on(self, name: str) -> str | None:
        o = self.objects.get(name)
        return o.relation_target if o is not None and o.relation in _RESTING else None

    def reachable(self, name: str) -> bool:
        """Within reach from the base position (module docstring: what NAVIGATE_TO makes reachable)."""
        if name == self.held:
            return True
        spots = {self.robot_at, self.robot_site} - {None}
        return name in spots or self._rests_on(name) in spots

    def _unknown(self, what: str, obj: str) -> Violation:
        why = " (the instruction names it, the episode's scene does not have it)" if obj in self.absent else ""
        return Violation(code="unknown_object", action=what, obj=obj,
                         message=f"{what}: no object \"{obj}\" in the episode{why}")

    def holds(self, condition: str, obj: str | None) -> tuple[bool, Violation | None]:
        """The answer to a guard condition; (False, violation) when obj is missing or not in the world."""
        if not obj:
            return False, Violation(code="missing_obj", action=condition, message=f"{condition} needs an object")
        if obj not in self.objects:
            return False, self._unknown(condition, obj)
        o = self.objects[obj]
        answer = {"IsHolding": self.held == obj, "IsOpen": o.is_open, "IsReachable": self.reachable(obj),
                  "IsToggledOn": o.toggled_on}[condition]
        return answer, None

    def apply(self, action: str, obj: str | None) -> Violation | None:
        """Apply one primitive; returns the violation, or None. State changes only on success."""
        prim = PAL_V1[action]

        def fail(code: str, message: str) -> Violation:
            return Violation(code=code, message=message, action=action, obj=obj)

        if "obj" in prim.ports:
            if not obj:
                return fail("missing_obj", f"{action} needs an object")
            if obj not in self.objects:
                return self._unknown(action, obj)
        if prim.hand == "empty" and self.held:
            return fail("hand_not_empty", f"{action} needs an empty hand but the robot holds {self.held}")
        if prim.hand == "holding" and not self.held:
            return fail("hand_empty", f"{action} needs a held object but the hand is empty")
        target = self.objects.get(obj) if obj else None
        held = self.objects.get(self.held) if self.held else None
        if prim.hand == "holding" and target is not None and held is not None and target.name == held.name:
            return fail("same_object", f"{action}: {obj} is the held object itself")
        if target is not None and action != "NAVIGATE_TO" and not self.reachable(obj):
            where = f"next to {self.robot_at}" if self.robot_at else "next to nothing yet"
            return fail("not_reachable", f"{action} {obj}: out of reach (the robot is {where}); NAVIGATE_TO {obj} first")
        a = target.affordances if target is not None else None

        if action == "NAVIGATE_TO":
            self.robot_at, self.robot_site = obj, self._rests_on(obj)
        elif action == "GRASP":
            if not a.graspable:
                return fail("not_graspable", f"{obj} cannot be picked up")
            box = self._container_of(obj)
            if box is not None and box.affordances.openable and not box.is_open:
                return fail("inside_closed_container", f"{obj} is inside {box.name}, which is closed")
            self.held, target.relation, target.relation_target = obj, "held", None
        elif action in ("OPEN", "CLOSE"):
            if not a.openable:
                return fail("not_openable", f"{obj} cannot be opened or closed")
            target.is_open = action == "OPEN"
        elif action in ("TOGGLE_ON", "TOGGLE_OFF"):
            if not a.toggleable:
                return fail("not_toggleable", f"{obj} cannot be switched on or off")
            target.toggled_on = action == "TOGGLE_ON"
        elif action in ("PLACE_ON_TOP", "PLACE_INSIDE", "PLACE_NEAR_HEATING_ELEMENT"):
            if action == "PLACE_INSIDE":
                if not (a.container or a.openable):
                    return fail("not_a_container", f"nothing can be put inside {obj}")
                if a.openable and not target.is_open:
                    return fail("container_closed", f"{obj} is closed; OPEN it first")
            if action == "PLACE_NEAR_HEATING_ELEMENT" and not a.heat_source:
                return fail("not_a_heat_source", f"{obj} is not a heating element")
            relation = {"PLACE_ON_TOP": "on_top", "PLACE_INSIDE": "inside", "PLACE_NEAR_HEATING_ELEMENT": "near"}[action]
            held.relation, held.relation_target, self.held = relation, obj, None
        elif action == "RELEASE":
            held.relation, held.relation_target, self.held = "released", self.robot_at, None
        elif action == "SOAK_UNDER":
            if not a.fluid_source:
                return fail("not_a_fluid_source", f"{obj} gives no fluid to soak under")
            if a.toggleable and not target.toggled_on:
                return fail("source_off", f"{obj} is off; TOGGLE_ON it first")
            held.soaked = True
        elif action == "SOAK_INSIDE":
            if not (a.container or a.fluid_source):
                return fail("not_a_container", f"{obj} holds no fluid to soak in")
            if a.openable and not target.is_open:
                return fail("container_closed", f"{obj} is closed; OPEN it first")
            held.soaked = True
        elif action in TOOL_USES:
            use = TOOL_USES[action]
            if not getattr(a, use.target):
                return fail(use.target_code, f"{obj} {use.target_needs}")
            if not getattr(held.affordances, use.tool):
                return fail(use.tool_code, f"{action} {obj} needs a held {use.tool_needs}; the robot holds {held.name}")
            setattr(target, use.effect, True)
        return None


def world_for_objects(objects: Iterable[str], *, affordances: dict[str, Affordances] | None = None,
                      open: Iterable[str] = (), on: Iterable[str] = (), inside: dict[str, str] | None = None,
                      on_top: dict[str, str] | None = None, held: str | None = None) -> SymbolicWorld:
    """A world with these objects; affordances inferred from names unless given.

    ``open``/``on``: openables that start open / toggleables that start on; ``inside`` and
    ``on_top`` map an object to where it starts; ``held`` starts in the hand.
    """
    names = list(dict.fromkeys([*objects, *(inside or {}).values(), *(on_top or {}).values()]))
    world = SymbolicWorld(objects={n: WorldObject(name=n, affordances=(affordances or {}).get(n) or infer_affordances(n))
                                   for n in names})
    for n in open:
        world.objects[n].is_open = True
    for n in on:
        world.objects[n].toggled_on = True
    for rel, mapping in (("inside", inside), ("on_top", on_top)):
        for n, where in (mapping or {}).items():
            world.objects.setdefault(n, WorldObject(name=n, affordances=infer_affordances(n)))
            world.objects[n].relation, world.objects[n].relation_target = rel, where
    if held:
        world.objects.setdefault(held, WorldObject(name=held, affordances=infer_affordances(held)))
        world.held, world.objects[held].relation = held, "held"
    return world


def world_for_episode(scene_objects: Iterable[str], instruction_objects: Iterable[str] = (), *,
                      object_states: Mapping[str, str] | None = None) -> SymbolicWorld:
    """The world of one episode, from plain data the agents have.

    ``scene_objects``: what the episode's scene holds (the metadata ``objects`` list, or, when the
    episode has none, the scene report's entities). ``instruction_objects``: the objects the
    instruction parse names. With a scene list, the world is exactly the scene: instruction
    objects it lacks stay out (recorded in ``absent``), so a tree that uses them fails with
    ``unknown_object``. With no scene list at all, the instruction is the only evidence and its
    objects make the world. ``object_states`` (``{"drawer": "open", "lamp": "on"}``) sets the
    start states; states of objects outside the world are ignored.
    """
    scene = list(dict.fromkeys(o for o in scene_objects if o))
    named = list(dict.fromkeys(o for o in instruction_objects if o))
    objects = scene or named
    states = {k: v.strip().lower() for k, v in (object_states or {}).items() if k in objects}
    world = world_for_objects(objects, open=[k for k, v in states.items() if v == "open"],
                              on=[k for k, v in states.items() if v == "on"])
    world.absent = [o for o in named if o not in world.objects]
    return world
