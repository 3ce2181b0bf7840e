"""Agent prompts kept as Markdown files with a ``version`` front matter.

The version enters the LLM cache key (``prompt_version``): editing a prompt without bumping it
would serve stale cached replies.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel


class PromptFile(BaseModel):
    name: str
    version: str
    text: str

    @property
    def prompt_version(self) -> str:
        return f"{self.name}@{self.version}"


def read_prompt_file(path: Path) -> PromptFile:
    raw = Path(path).read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise ValueError(f"prompt {path} has no front matter with a version")
    front, _, body = raw[4:].partition("\n---\n")
    meta = yaml.safe_load(front) or {}
    if "version" not in meta:
        raise ValueError(f"prompt {path}: front matter has no 'version'")
    return PromptFile(name=Path(path).stem, version=str(meta["version"]), text=body.strip())


def prompt_versions(prompts_dir: Path) -> list[str]:
    """``name@version`` of every prompt file in ``prompts_dir``, sorted: a bump in any of them is a
    changed input for the nightly refreshes (versions, not text: they key the LLM cache)."""
    return sorted(read_prompt_file(path).prompt_version for path in Path(prompts_dir).glob("*.md"))
