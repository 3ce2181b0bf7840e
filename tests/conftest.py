import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
# Tests never talk to a hosted model by accident.
os.environ.pop("BENCHGEN_LLM_MODEL", None)
os.environ.pop("BENCHGEN_LLM_API_BASE", None)


@pytest.fixture
def datasets_dir(tmp_path, monkeypatch):
    """An empty datasets root for one test (outputs, cache and traces land here)."""
    root = tmp_path / "datasets"
    root.mkdir()
    monkeypatch.setenv("BENCHGEN_DATASETS", str(root))
    return root


@pytest.fixture
def python_exe():
    return sys.executable


@pytest.fixture(scope="module")
def private_build_server(tmp_path_factory):
    """A sandbox build server of the test module's own (others' servers stay untouched), stopped at the end."""
    from benchgen_assets.sandbox import shutdown_server

    mp = pytest.MonkeyPatch()
    mp.setenv("BENCHGEN_SANDBOX_DIR", str(tmp_path_factory.mktemp("sandbox-runtime")))
    yield
    shutdown_server()
    mp.undo()
