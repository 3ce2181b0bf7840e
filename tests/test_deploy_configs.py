"""The scale-out dagster.yaml variants validate against Dagster's schemas, launchers included."""

import importlib
import shutil
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config

from resources.paths import PROJECT_ROOT
from tests.postgres import POSTGRES_BIN, postgres_storage, throwaway_postgres

VARIANTS = sorted((PROJECT_ROOT / "deploy").glob("dagster.*.yaml"))


def test_there_are_variants_for_postgres_and_launchers():
    names = {p.name for p in VARIANTS}
    assert {"dagster.postgres.yaml", "dagster.k8s.yaml", "dagster.docker.yaml", "dagster.celery.yaml"} <= names


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda p: p.name)
def test_variant_validates(variant: Path, tmp_path, monkeypatch):
    shutil.copy(variant, tmp_path / "dagster.yaml")
    dagster_instance_config(str(tmp_path))  # raises DagsterInvalidConfigError on a bad entry
    raw = yaml.safe_load(variant.read_text())
    storage = raw["storage"]["custom"]  # the project's Postgres storage, its config Dagster's Postgres block
    assert (storage["module"], storage["class"]) == ("resources.dagster_postgres_storage", "PostgresStorage")
    cls = getattr(importlib.import_module(storage["module"]), storage["class"])
    for var in ("BENCHGEN_PG_HOST", "BENCHGEN_PG_USER", "BENCHGEN_PG_PASSWORD", "BENCHGEN_PG_DB"):
        monkeypatch.setenv(var, "x")
    checked = process_config(resolve_to_config_type(cls.config_type()), storage["config"])
    assert checked.success, [e.message for e in checked.errors]
    launcher = raw.get("run_launcher")
    if launcher:
        cls = getattr(importlib.import_module(launcher["module"]), launcher["class"])
        for var in ("BENCHGEN_IMAGE",):
            monkeypatch.setenv(var, "registry.example/benchgen:latest")
        result = process_config(resolve_to_config_type(cls.config_type()), launcher.get("config", {}))
        assert result.success, [e.message for e in result.errors]


@pytest.mark.skipif(not POSTGRES_BIN.is_dir(), reason="needs the PostgreSQL 15 server binaries")
def test_postgres_variant_opens_a_real_instance(tmp_path):
    """The Postgres storage block as deployed (driver scheme included) against a real server: the
    instance creates its tables and keeps dynamic partitions and runs."""
    from dagster import DagsterInstance

    with throwaway_postgres() as port:
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"storage": postgres_storage(port)}))
        with DagsterInstance.from_config(str(tmp_path)) as instance, \
                DagsterInstance.from_config(str(tmp_path)) as other:  # another process, or another host
            instance.add_dynamic_partitions("episodes", ["apple_into_bowl", "lamp_on"])
            assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl", "lamp_on"]
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorageCachedPartitions"
            # The list is reused until a change, made by any instance, is seen at the next read.
            assert instance.has_dynamic_partition("episodes", "lamp_on")
            other.add_dynamic_partitions("episodes", ["fold_towel"])
            assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl", "lamp_on", "fold_towel"]
            other.delete_dynamic_partition("episodes", "lamp_on")
            assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl", "fold_towel"]
            assert not instance.has_dynamic_partition("episodes", "lamp_on")
            other.delete_dynamic_partition("episodes", "fold_towel")
            other.add_dynamic_partitions("episodes", ["lamp_on"])  # same size again, a newer row
            assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl", "lamp_on"]
            assert instance.has_dynamic_partition("episodes", "lamp_on")


def _add_in_child(instance, keys: list[str]) -> None:
    for key in keys:
        instance.add_dynamic_partitions("episodes", [key])
        assert instance.has_dynamic_partition("episodes", key)


@pytest.mark.skipif(not POSTGRES_BIN.is_dir(), reason="needs the PostgreSQL 15 server binaries")
def test_postgres_storage_pools_its_connections_and_a_forked_process_opens_its_own(tmp_path):
    """The deployed storage keeps a few connections open instead of one per statement (Dagster's default
    outside the webserver); a process forked while the pool holds one opens its own: both go on at once
    without crossing each other's wire, and the parent's cached partition list is read again after the
    child's adds."""
    import multiprocessing

    from dagster import DagsterInstance
    from sqlalchemy import event

    with throwaway_postgres() as port:
        (tmp_path / "dagster.yaml").write_text(yaml.safe_dump({"storage": postgres_storage(port)}))
        with DagsterInstance.from_config(str(tmp_path)) as instance:
            opened = []
            event.listen(instance.event_log_storage._engine, "connect", lambda *_: opened.append(1))
            instance.add_dynamic_partitions("episodes", ["apple_into_bowl"])
            for _ in range(100):
                assert instance.has_dynamic_partition("episodes", "apple_into_bowl")
                assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl"]
            assert len(opened) <= 2, len(opened)  # one per statement would be hundreds

            added = [f"copy_{i}" for i in range(50)]
            process = multiprocessing.get_context("fork").Process(target=_add_in_child, args=(instance, added))
            process.start()
            while process.is_alive():  # the parent's reads meanwhile, on its own connections
                assert instance.get_dynamic_partitions("episodes")[0] == "apple_into_bowl"
            assert process.exitcode == 0
            assert instance.get_dynamic_partitions("episodes") == ["apple_into_bowl", *added]
            assert instance.has_dynamic_partition("episodes", "copy_49")
