"""The scale-out dagster.yaml variants validate against Dagster's schemas, launchers included."""

import importlib
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config

from resources.paths import PROJECT_ROOT

VARIANTS = sorted((PROJECT_ROOT / "deploy").glob("dagster.*.yaml"))


def test_there_are_variants_for_postgres_and_launchers():
    names = {p.name for p in VARIANTS}
    assert {"dagster.postgres.yaml", "dagster.k8s.yaml", "dagster.docker.yaml", "dagster.celery.yaml"} <= names


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.name)
def test_variant_validates(variant: Path, tmp_path, monkeypatch):
    shutil.copy(variant, tmp_path / "dagster.yaml")
    dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError on a bad entry
    raw = yaml.safe_load(variant.read_text())
    assert "postgres" in raw["storage"]
    launcher = raw.get("run_launcher")
    if launcher:
        cls = getattr(importlib.import_module(launcher["module"]), launcher["class"])
        for var in ("BENCHGEN_IMAGE",):
            monkeypatch.setenv(var, "registry.example/benchgen:latest")
        result = process_config(resolve_to_config_type(cls.config_type()), launcher.get("config", {}))
        assert result.success, [e.message for e in result.errors]
