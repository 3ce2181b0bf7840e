"""Both code locations load, in-process and through Dagster's own CLI, and stay light at import."""

import json
import os
import subprocess
import sys

import pytest

from resources.paths import PROJECT_ROOT

LOCATIONS = ["benchgen_assets.definitions", "teacher_assets.definitions"]
HEAVY = ["build123d", "litellm", "pandas", "mujoco", "OCP", "coacd", "behaviortreepy", "trimesh", "lxml"]


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
    for a in _llm_assets(defs):
        for key in a.keys:
            assert LLM_POOL in (a.get_op_def_for_asset_key(key).pools or set()), key


def _llm_assets(defs) -> list:
    from dagster import AssetsDefinition

    found = [a for a in defs.assets if isinstance(a, AssetsDefinition) and "llm" in a.required_resource_keys]
    assert found, "each factory has LLM-calling assets"
    return found


@pytest.mark.parametrize("module", LOCATIONS)
def test_lineage_leads_from_every_llm_step_to_its_prompt_files(module):
    """Each prompt file is a (non-materializable) asset upstream of the steps that send it, so a
    failed check can be followed back to the prompt; its version and path are in its metadata."""
    import importlib

    from dagster import AssetsDefinition

    from resources.llm.prompts import read_prompt_file

    defs = importlib.import_module(module).defs
    prompts = {s.key: s for s in defs.assets if not isinstance(s, AssetsDefinition)}
    used = set()
    for a in _llm_assets(defs):
        upstream = {dep.asset_key for spec in a.specs for dep in spec.deps} & set(prompts)
        assert upstream, f"{a.key.to_user_string()} has no prompt upstream"
        used |= upstream
    assert used == set(prompts), "every prompt file is used by some step"
    for key, spec in prompts.items():
        path = spec.metadata["path"].path
        assert spec.metadata["prompt_version"] == read_prompt_file(path).prompt_version
        assert key.to_user_string() == f"{read_prompt_file(path).name}_prompt"
