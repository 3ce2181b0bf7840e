"""Agent prompts: one Markdown file per agent with a ``version`` in its front matter."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


class AgentPrompt(BaseModel):
    name: str
    version: str
    text: str

    @property
    def cache_version(self) -> str:
        """What enters the LLM cache key: editing a prompt means bumping its version."""
        return f"{self.name}@{self.version}"


@functools.cache
def load_prompt(name: str) -> AgentPrompt:
    raw = (PROMPTS_DIR / f"{name}.md").read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise ValueError(f"prompt {name}.md has no front matter with a version")
    front, _, body = raw[4:].partition("\n---\n")
    meta = yaml.safe_load(front) or {}
    if "version" not in meta:
        raise ValueError(f"prompt {name}.md: front matter has no 'version'")
    return AgentPrompt(name=name, version=str(meta["version"]), text=body.strip())
