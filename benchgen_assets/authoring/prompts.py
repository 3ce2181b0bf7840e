"""System prompts of the authoring agents (``prompts/<agent>.md``, versioned front matter)."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

from resources.llm.prompts import PromptFile, read_prompt_file

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> PromptFile:
    prompt = read_prompt_file(PROMPTS_DIR / f"{name}.md")
    return prompt.model_copy(update={"text": _fill(prompt.text)})


def _fill(text: str) -> str:
    # The import allow-list and the scene API are the code's own, so the prompt never drifts from
    # what the sandbox enforces and imports.
    from benchgen_assets.sandbox.policy import ALLOWED_MODULES

    return text.replace("{{allowed_modules}}", ", ".join(ALLOWED_MODULES)).replace("{{scene_api}}", scene_api())


def scene_api() -> str:
    """``benchgen_assets/scene.py`` as a script author needs it: every class whole (with its
    comments), public functions as signature + docstring, private helpers left out."""
    import benchgen_assets.scene as scene

    source = Path(scene.__file__).read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    drop: list[tuple[int, int, str]] = []  # (first line, last line, replacement) 1-based
    for node in tree.body:
        private = isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name.startswith("_") or (
            isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.startswith("_") for t in node.targets))
        if private:  # with the comment lines right above it
            first = node.lineno
            while first > 1 and lines[first - 2].startswith("#") and not lines[first - 2].startswith("# --"):
                first -= 1
            drop.append((first, node.end_lineno, ""))
        elif isinstance(node, ast.FunctionDef):
            doc = node.body[0] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(
                getattr(node.body[0], "value", None), ast.Constant) else None
            first_body = (doc.end_lineno + 1) if doc else node.body[0].lineno
            drop.append((first_body, node.end_lineno, "    ..."))
    for first, last, repl in sorted(drop, reverse=True):
        lines[first - 1:last] = [repl] if repl else []
    docstring_end = tree.body[0].end_lineno if isinstance(tree.body[0], ast.Expr) else 0
    # the module docstring and __future__ import say nothing a script author needs
    body = [ln for ln in lines[docstring_end:] if not ln.startswith("from __future__")]
    text = "\n".join(body).strip("\n")
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text
