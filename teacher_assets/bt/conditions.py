"""Condition nodes a teacher tree may use as guards: questions about the world, never actions.

Actions stay PAL v1 only; these conditions let a tree skip a step that is already done
(``Fallback(IsOpen(drawer), OPEN(drawer))``) instead of doing it twice. Each takes one input
port, ``obj``, is written ``<Condition ID="IsOpen" obj="{drawer}"/>`` (the compact
``<IsOpen obj="…"/>`` is normalized to that form) and is declared in ``TreeNodesModel`` as a
``<Condition>``. BehaviorTree.CPP registers them as conditions (``btcpp.py``); the symbolic
executor answers them from its world state (``world.py``):

* ``IsHolding(obj)``   — the hand holds obj.
* ``IsOpen(obj)``      — obj is open (false for anything that does not open).
* ``IsReachable(obj)`` — obj is within reach of the robot's base (see ``world.py`` for what
  NAVIGATE_TO makes reachable).
* ``IsToggledOn(obj)`` — obj is switched on (false for anything that does not toggle).

A negated guard is an ``Inverter`` over the condition (``Fallback(Inverter(IsOpen(door)),
CLOSE(door))``: close only what is open). A condition not listed here is an error
(``unknown_condition`` in conformance; BehaviorTree.CPP refuses to load it).

Public API: ``CONDITIONS`` (name → ``ConditionSpec``), ``ConditionSpec``.
"""

from __future__ import annotations

from pydantic import BaseModel


class ConditionSpec(BaseModel):
    name: str
    ports: tuple[str, ...]
    description: str


_SPECS = [
    ConditionSpec(name="IsHolding", ports=("obj",), description="SUCCESS when the hand holds obj."),
    ConditionSpec(name="IsOpen", ports=("obj",), description="SUCCESS when obj is open."),
    ConditionSpec(name="IsReachable", ports=("obj",), description="SUCCESS when obj is within the robot's reach."),
    ConditionSpec(name="IsToggledOn", ports=("obj",), description="SUCCESS when obj is switched on."),
]

CONDITIONS: dict[str, ConditionSpec] = {c.name: c for c in _SPECS}
