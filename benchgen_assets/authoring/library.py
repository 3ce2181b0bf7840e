"""The task library (GenSim's idea): every accepted scenario script, with its plan, task and oracle
results, kept under ``datasets/library/`` so later coder prompts can draw worked examples from it.

Plain Python (no Dagster). The shipped family scripts seed it: they are always entries (read from
``benchgen_assets/families`` as they are now, never a stale copy). An accepted script enters once
per script sha256 (``<sha16>/script.py`` + ``entry.json``, each swapped in atomically); the same
script accepted again only adds its scenario id. Writers take a lock file, so parallel partition
runs never lose each other's additions.
"""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Literal, Optional

from pydantic import BaseModel, Field

from benchgen_assets import layout
from benchgen_assets.records import ScenarioPlan, ScenarioScript, ScenarioValidation
from resources.atomic import atomic_write_json, replace_dir

from .composition import composition_of

ENTRY_FILE = "entry.json"
SCRIPT_FILE = "script.py"
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 24_000  # all example sources together: a bounded share of a model's context


class OracleSummary(BaseModel):
    variant_id: str
    solved: bool
    time_to_success_s: Optional[float] = None
    time_limit_s: float


class LibraryEntry(BaseModel):
    code_sha256: str
    source: Literal["shipped", "accepted"]
    title: str
    family: Optional[str]  # the plan's family (a shipped family, or a new one a hosted model named)
    families: list[str]  # the families it builds on: its own, or a composition's components
    tier: int
    plan: Optional[ScenarioPlan] = None
    instruction: str = ""  # the task as a policy is told it
    predicate: str = ""  # the goal, readable
    time_limit_s: Optional[float] = None
    oracle: list[OracleSummary] = Field(default_factory=list)  # per valid variant
    valid_variants: int = 0
    total_variants: int = 0
    scenarios: list[str] = Field(default_factory=list)  # scenario ids that produced this script
    added_at: float = 0.0  # unix time it first entered (shipped: 0, always first among equals)


class Example(BaseModel):
    entry: LibraryEntry
    code: str


def _entry_dir(sha: str) -> Path:
    return layout.library_root() / sha[:16]


@contextmanager
def _locked() -> Iterator[None]:
    root = layout.library_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def shipped_entries() -> list[Example]:
    from benchgen_assets.families import FAMILIES, family_source
    from benchgen_assets.variant_runner import code_sha256

    out = []
    for info in FAMILIES.values():
        code = family_source(info.name)
        out.append(Example(code=code, entry=LibraryEntry(
            code_sha256=code_sha256(code), source="shipped", title=info.title, family=info.name,
            families=[info.name], tier=info.tier)))
    return out


def stored_entries() -> list[Example]:
    """The accepted entries on disk (an unreadable one is skipped, never fatal to a prompt)."""
    root = layout.library_root()
    out = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.name.startswith("."):  # the lock file, an entry being swapped in
            continue
        try:
            entry = LibraryEntry.model_validate_json((d / ENTRY_FILE).read_text())
            out.append(Example(entry=entry, code=(d / SCRIPT_FILE).read_text()))
        except (OSError, ValueError):
            continue
    return out


def entries() -> list[Example]:
    """Shipped scripts first, then accepted ones in the order they entered; one per script."""
    seen: dict[str, Example] = {}
    for ex in [*shipped_entries(), *sorted(stored_entries(), key=lambda e: e.entry.added_at)]:
        seen.setdefault(ex.entry.code_sha256, ex)
    return list(seen.values())


def _plan_families(plan: ScenarioPlan) -> list[str]:
    try:
        composition = composition_of(plan.geometric_requirements)
    except ValueError:  # a hand-edited plan's broken composition line: rank by family and tier only
        composition = None
    if composition is not None:
        return composition.families()
    return [plan.family] if plan.family else []


def _summary(validation: ScenarioValidation) -> dict[str, Any]:
    """Task (from the first valid variant's manifest row) and oracle results of the valid variants."""
    valid = [v for v in validation.variants if v.report.passed]
    first = valid[0].manifest if valid else None
    return {
        "instruction": (first and first.instruction) or "",
        "predicate": (first and first.predicate) or "",
        "time_limit_s": first.time_limit_s if first else None,
        "oracle": [OracleSummary(variant_id=v.report.variant_id, solved=v.report.oracle.solved,
                                 time_to_success_s=v.report.oracle.time_to_success_s,
                                 time_limit_s=v.report.oracle.time_limit_s)
                   for v in valid if v.report.oracle is not None],
        "valid_variants": len(valid),
        "total_variants": len(validation.variants),
    }


def add_accepted(plan: ScenarioPlan, script: ScenarioScript, validation: ScenarioValidation) -> Optional[LibraryEntry]:
    """Enter ``script`` if it was accepted and at least one variant is valid; returns its entry."""
    if not script.accepted or validation.valid == 0:
        return None
    d = _entry_dir(script.code_sha256)
    with _locked():
        old = None
        if (d / ENTRY_FILE).exists():
            try:
                old = LibraryEntry.model_validate_json((d / ENTRY_FILE).read_text())
            except ValueError:
                old = None  # a damaged entry is rebuilt from this acceptance
        families = _plan_families(plan)
        entry = LibraryEntry(
            code_sha256=script.code_sha256, source="accepted", title=plan.title, family=plan.family,
            families=families, tier=plan.tier, plan=plan, **_summary(validation),
            scenarios=sorted({*(old.scenarios if old else []), script.scenario_id}),
            added_at=old.added_at if old else time.time())
        if old is None:
            def fill(tmp: Path) -> None:
                (tmp / SCRIPT_FILE).write_text(script.code)
                (tmp / ENTRY_FILE).write_text(entry.model_dump_json(indent=1))

            replace_dir(d, fill)
        else:
            atomic_write_json(d / ENTRY_FILE, entry.model_dump(mode="json"))
    return entry


def examples_for(plan: ScenarioPlan, *, exclude_scenario: Optional[str] = None, max_examples: int = MAX_EXAMPLES,
                 max_chars: int = MAX_EXAMPLE_CHARS) -> list[Example]:
    """The most relevant library scripts for ``plan``: those sharing most of its families first,
    then its tier; shipped before accepted, older before newer. A scenario's own earlier scripts
    are left out (a rerun sees the same examples). At most ``max_examples``, ``max_chars`` of code."""
    wanted = set(_plan_families(plan))
    ranked = sorted(
        (ex for ex in entries() if exclude_scenario is None or ex.entry.scenarios != [exclude_scenario]),
        key=lambda ex: (-len(wanted & set(ex.entry.families)), ex.entry.tier != plan.tier))
    out, used = [], 0
    for ex in ranked:
        if len(out) == max_examples:
            break
        if used + len(ex.code) <= max_chars:
            out.append(ex)
            used += len(ex.code)
    return out


def example_text(examples: list[Example]) -> str:
    """The examples as the coder reads them: what each builds, its task, then the whole module."""
    blocks = []
    for i, ex in enumerate(examples, 1):
        e = ex.entry
        what = f"family {e.family}" if e.family else f"composed of {', '.join(e.families)}"
        lines = [f"### Example {i}: {e.title} ({what}, tier {e.tier}, {e.source})"]
        if e.instruction:
            lines.append(f"Task: {e.instruction} Goal: {e.predicate}. Time limit {e.time_limit_s:g} s.")
        solved = [o for o in e.oracle if o.solved]
        if e.oracle:
            lines.append(f"Oracle solved {len(solved)}/{len(e.oracle)} valid variants"
                         + (f" (slowest {max(o.time_to_success_s or 0 for o in solved):.2f} s)." if solved else "."))
        lines.append("```python\n" + ex.code.rstrip("\n") + "\n```")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)

