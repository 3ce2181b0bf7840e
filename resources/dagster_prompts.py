"""Agent prompt files as external assets, so lineage runs from any result or failed check back to
the prompt behind it: each LLM-calling asset lists the prompts it uses as ``deps``."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, AssetSpec, MetadataValue

from resources.llm.prompts import read_prompt_file
from resources.paths import PROJECT_ROOT


def prompt_key(name: str) -> AssetKey:
    """``coder`` → ``coder_prompt`` (prompt names are unique across both code locations)."""
    return AssetKey(f"{name}_prompt")


def prompt_asset_specs(prompts_dir: Path, group: str) -> list[AssetSpec]:
    """One spec per ``<name>.md``: its path, version and text, read when the code location loads
    (a reload picks up an edited prompt)."""
    specs = []
    for path in sorted(Path(prompts_dir).glob("*.md")):
        prompt = read_prompt_file(path)
        specs.append(AssetSpec(
            prompt_key(prompt.name), group_name=group, kinds={"markdown"},
            description=f"The {prompt.name} agent's system prompt, {path.relative_to(PROJECT_ROOT)}. "
                        "Its version is part of the LLM cache key: bump it when editing the text.",
            metadata={"path": MetadataValue.path(str(path)), "prompt_version": prompt.prompt_version,
                      "text": MetadataValue.md(prompt.text)},
        ))
    return specs


__all__ = ["prompt_asset_specs", "prompt_key"]
