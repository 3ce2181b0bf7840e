"""Scenes composed from known families ("a drawer with a peg-in-hole on top", "two levers").

The offline planner turns a prompt that names several known things into a ``Composition`` and
writes it into the plan as one ``Composition: {json}`` line of its geometric requirements (readable
by a hosted coder and a human editing the plan alike); the offline coder reads it back and writes
ONE script: each component family's script verbatim inside a factory function, then a ``build``
that places the component scenes (side by side, or one on top of another) and merges them with
the helpers at the end of ``benchgen_assets.scene``.
"""

from __future__ import annotations

import json
import textwrap
from typing import Optional

from pydantic import BaseModel, Field, model_validator

COMPOSITION_PREFIX = "Composition: "


class Component(BaseModel):
    label: str = Field(pattern=r"^[a-z][a-z0-9_]*$")  # name prefix of its parts and sites
    family: str
    on_top_of: Optional[str] = None  # label of the component it stands on; else beside the others


class Composition(BaseModel):
    components: list[Component] = Field(min_length=2)

    @model_validator(mode="after")
    def _consistent(self) -> "Composition":
        labels = [c.label for c in self.components]
        if len(set(labels)) != len(labels):
            raise ValueError(f"component labels must be unique, got {labels}")
        for i, c in enumerate(self.components):
            if c.on_top_of is not None and c.on_top_of not in labels[:i]:
                raise ValueError(f"component {c.label!r} stands on {c.on_top_of!r}, which must be an earlier component")
        return self

    def families(self) -> list[str]:
        return list(dict.fromkeys(c.family for c in self.components))

    def plan_line(self) -> str:
        return COMPOSITION_PREFIX + json.dumps(self.model_dump(mode="json", exclude_none=True))


def composition_of(requirements: list[str]) -> Optional[Composition]:
    """The composition a plan's geometric requirements carry, if any (a malformed line raises)."""
    for line in requirements:
        if line.startswith(COMPOSITION_PREFIX):
            return Composition.model_validate_json(line[len(COMPOSITION_PREFIX):])
    return None


def components_for(mentions: list[tuple[str, int]], on_top: Optional[tuple[int, int]]) -> Composition:
    """From (family, copies) in prompt order and an optional (top, support) pair of mention indices:
    the components, each copy labelled apart ("lever_1", "lever_2"), the top one after its support."""
    labels: list[list[str]] = []
    for family, copies in mentions:
        labels.append([family] if copies == 1 else [f"{family}_{k}" for k in range(1, copies + 1)])
    order = list(range(len(mentions)))
    if on_top is not None:
        top, support = on_top
        order.remove(top)
        order.insert(order.index(support) + 1, top)
    components = []
    for i in order:
        for k, label in enumerate(labels[i]):
            # the top thing stands on the (first copy of the) support; its other copies go beside
            under = labels[on_top[1]][0] if on_top is not None and i == on_top[0] and k == 0 else None
            components.append(Component(label=label, family=mentions[i][0], on_top_of=under))
    return Composition(components=components)


def describe(composition: Composition, titles: dict[str, str]) -> str:
    parts = []
    for c in composition.components:
        where = f" on top of {c.on_top_of}" if c.on_top_of else ""
        parts.append(f"{titles.get(c.family, c.family)} ({c.label}){where}")
    return ", ".join(parts)


def composed_script(composition: Composition, sources: dict[str, str], name: str,
                    min_scales: dict[str, tuple[float, float, float]]) -> str:
    """ONE scenario module building every component from its family script (verbatim, in a factory);
    ``min_scales``: each family's smallest scale, below which a component on top is never shrunk."""
    factories = []
    for family in composition.families():
        body = textwrap.indent(sources[family].strip("\n"), "    ")
        factories.append(f"def {family}_family():\n    \"\"\"The {family} family script, verbatim; returns its build.\"\"\"\n"
                         f"{body}\n\n    return build\n")
    n = len(composition.components)
    lines = ["def build(seed: int, scale: tuple[float, float, float]) -> Scene:",
             "    rng = random.Random(seed)",
             f"    seeds = [rng.randrange(2**31) for _ in range({n})]",
             "    placed = {}"]
    for i, c in enumerate(composition.components):
        make = f"{c.family}_family()"
        if i == 0:
            lines.append(f"    placed[{c.label!r}] = prefixed({make}(seeds[{i}], scale), {c.label + '_'!r})")
        elif c.on_top_of:
            lines.append(f"    placed[{c.label!r}] = prefixed(fitted_on_top(placed[{c.on_top_of!r}], {make}, "
                         f"seeds[{i}], scale, {tuple(min_scales[c.family])!r}), {c.label + '_'!r})")
        else:
            lines.append(f"    placed[{c.label!r}] = beside(list(placed.values()), "
                         f"prefixed({make}(seeds[{i}], scale), {c.label + '_'!r}))")
    lines.append(f"    return combine_scenes({name!r}, list(placed.values()))")
    header = (f'"""Composed scenario {name}: {", ".join(c.label for c in composition.components)}.\n\n'
              "Each component is its family's script, verbatim, inside a factory; build() places the component\n"
              "scenes without overlap, prefixes their part and site names and merges their tasks (every goal\n"
              'predicate must hold; the oracles run in order)."""\n\n'
              "import random\n\n"
              "from benchgen_assets.scene import Scene, beside, combine_scenes, fitted_on_top, prefixed\n")
    return "\n\n".join([header, *factories, "\n".join(lines)]) + "\n"
