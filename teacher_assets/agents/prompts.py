"""Agent prompts: one Markdown file per agent in ``teacher_assets/prompts/``, versioned front matter."""

from __future__ import annotations

import functools
from pathlib import Path

from resources.llm.prompts import PromptFile, read_prompt_file

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@functools.cache
def load_prompt(name: str) -> PromptFile:
    return read_prompt_file(PROMPTS_DIR / f"{name}.md")
