"""System prompts of the authoring agents (``prompts/<agent>.md``, versioned front matter)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from resources.llm.prompts import PromptFile, read_prompt_file

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> PromptFile:
    prompt = read_prompt_file(PROMPTS_DIR / f"{name}.md")
    return prompt.model_copy(update={"text": _fill(prompt.text)})


def _fill(text: str) -> str:
    # The import allow-list is the sandbox's own, so the prompt never drifts from what is enforced.
    from benchgen_assets.sandbox.policy import ALLOWED_MODULES

    return text.replace("{{allowed_modules}}", ", ".join(ALLOWED_MODULES))
