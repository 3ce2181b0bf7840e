"""bench/RESULTS.md: each benchmark script replaces its own ``## `` section (or appends it)."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, text: str) -> None:
    """Replace the section that starts with the line ``heading`` (up to the next ``## ``) by ``text``."""
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    section = text.rstrip() + "\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: section + "\n", current).rstrip() + "\n"
    else:
        updated = current.rstrip() + "\n\n" + section
    RESULTS.write_text(updated)


def publish(heading: str, text: str, write: bool) -> None:
    """Print a benchmark's section; with ``write`` (the scripts' ``--write``), put it in RESULTS.md too."""
    print(text)
    if write:
        write_section(heading, text)
