"""Both code locations load, in-process and through Dagster's own CLI, and stay light at import."""

import json
import os
import subprocess
import sys

import pytest

from resources.paths import PROJECT_ROOT

LOCATIONS = ["benchgen_assets.definitions", "teacher_assets.definitions"]
HEAVY = ["build123d", "litellm", "pandas", "mujoco", "OCP", "coacd", "behaviortreepy", "trimesh"]


@pytest.mark.parametrize("module", LOCATIONS)
def test_definitions_import_without_heavy_libraries(module):
    """Heavy libraries load inside asset bodies, never when the code location is loaded."""
    code = (
        f"import sys, json, importlib; importlib.import_module({module!r}); "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("module", LOCATIONS)
def test_definitions_resolve(module):
    import importlib

    from dagster import Definitions

    defs = importlib.import_module(module).defs
    Definitions.validate_loadable(defs)
    assert "llm" in defs.resources


def test_dagster_cli_validates_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "benchgen_assets" in text and "teacher_assets" in text


@pytest.mark.parametrize("module", LOCATIONS)
def test_every_llm_calling_asset_is_in_the_llm_pool(module):
    """The pool limit can only respect a provider's rate limit if every LLM-calling step is in it."""
    import importlib

    from resources.dagster_resources import LLM_POOL

    defs = importlib.import_module(module).defs
    llm_assets = [a for a in defs.assets if "llm" in a.required_resource_keys]
    assert llm_assets, "each factory has LLM-calling assets"
    for a in llm_assets:
        for key in a.keys:
            assert LLM_POOL in (a.get_op_def_for_asset_key(key).pools or set()), key
