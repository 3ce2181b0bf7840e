"""Static review of a scenario script: what a careful reviewer checks before running it.

Used by the offline Internal Reviewer; the import allow-list is the sandbox's own check.
"""

from __future__ import annotations

import ast

from benchgen_assets.sandbox.policy import check_source


def _is_random_of_seed(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call) or not node.args:
        return False
    f = node.func
    named = (isinstance(f, ast.Attribute) and f.attr == "Random" and isinstance(f.value, ast.Name)
             and f.value.id == "random") or (isinstance(f, ast.Name) and f.id == "Random")
    return named and isinstance(node.args[0], ast.Name) and node.args[0].id == "seed"


def _global_random_calls(tree: ast.Module) -> list[str]:
    """``random.uniform(...)`` & co: module-level random state makes builds irreproducible."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "random"
                and node.func.attr not in ("Random",)):
            out.append(f"line {node.lineno}: random.{node.func.attr}() uses the global random state; "
                       "draw from rng = random.Random(seed)")
    return out


def static_review(code: str) -> list[str]:
    """Issues found in ``code`` (empty: approve)."""
    refused = check_source(code)
    if refused is not None and refused.kind == "syntax":
        return [refused.message]
    issues = [refused.message] if refused is not None else []
    tree = ast.parse(code)
    builds = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build"]
    if not builds:
        return issues or ["no top-level `def build(seed, scale)`"]
    build = builds[-1]  # the definition that is in effect when the module has run
    params = [a.arg for a in build.args.posonlyargs + build.args.args]
    if params != ["seed", "scale"] or build.args.vararg or build.args.kwonlyargs:
        issues.append(f"`build` must take exactly (seed, scale); it takes ({', '.join(params)})")
    if not any(_is_random_of_seed(n) for n in ast.walk(tree)):
        issues.append("randomness must come from `random.Random(seed)`; no such call found")
    issues += _global_random_calls(tree)
    if "scale" in params and not any(isinstance(n, ast.Name) and n.id == "scale" and isinstance(n.ctx, ast.Load)
                                     for n in ast.walk(build)):
        issues.append("`build` never uses `scale`: the scale vector must be applied to the dimensions")
    if not any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(build)):
        issues.append("`build` returns nothing; it must return a Scene")
    imports_scene = any(isinstance(n, ast.ImportFrom) and n.module == "benchgen_assets.scene"
                        and any(a.name in ("Scene", "*") for a in n.names) for n in tree.body)
    if not imports_scene or not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Scene"
                                    for n in ast.walk(tree)):
        issues.append("the module must build and return `Scene(...)` from benchgen_assets.scene")
    if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "Task" for n in ast.walk(tree)):
        issues.append("the scene declares no task: set `Scene(task=Task(instruction=..., goal=[...], oracle=[...]))` "
                      "from benchgen_assets.scene")
    return issues
