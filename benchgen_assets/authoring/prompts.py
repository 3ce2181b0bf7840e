"""System prompts of the authoring agents, kept as Markdown files with a ``version`` front matter.

The version enters the LLM cache key (``prompt_version``): editing a prompt without bumping it
would serve stale cached replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    @property
    def prompt_version(self) -> str:
        return f"{self.name}@{self.version}"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    raw = (PROMPTS_DIR / f"{name}.md").read_text()
    if not raw.startswith("---\n"):
        raise ValueError(f"prompt {name!r} has no front matter with a version")
    front, _, body = raw[4:].partition("\n---\n")
    meta = yaml.safe_load(front) or {}
    if "version" not in meta:
        raise ValueError(f"prompt {name!r}: front matter lacks 'version'")
    return Prompt(name=name, version=str(meta["version"]), text=_fill(body.strip()))


def _fill(text: str) -> str:
    # The import allow-list is the sandbox's own, so the prompt never drifts from what is enforced.
    from benchgen_assets.sandbox.policy import ALLOWED_MODULES

    return text.replace("{{allowed_modules}}", ", ".join(ALLOWED_MODULES))
