"""The tracked dagster.yaml gives a working instance: SQLite storage, a bounded run queue."""

import shutil

import pytest

from dagster import DagsterInstance
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.runs import SqliteRunStorage

from resources.paths import default_dagster_home


def test_project_instance_config(tmp_path, monkeypatch):
    shutil.copy(default_dagster_home() / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        config = instance.get_concurrency_config()
        assert config.run_queue_config.max_concurrent_runs == 4
        assert config.pool_config.default_pool_limit == 4
        assert isinstance(instance.run_storage, SqliteRunStorage)
        assert str(tmp_path) in instance.run_storage._conn_string  # state stays inside DAGSTER_HOME


def _asset_and_home(tmp_path, monkeypatch, storage_yaml: str):
    import yaml

    config = yaml.safe_load((default_dagster_home() / "dagster.yaml").read_text())
    config["storage"] = yaml.safe_load(storage_yaml)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))


def _materialize_counter(instance, key: str):
    from dagster import DynamicPartitionsDefinition, asset, materialize

    parts = DynamicPartitionsDefinition(name="things")

    @asset(partitions_def=parts, name="counter")
    def counter(context):
        context.add_output_metadata({"key": context.partition_key})
        return 1

    instance.add_dynamic_partitions("things", [key])
    return materialize([counter], partition_key=key, instance=instance).success


def test_project_storage_is_dagster_sqlite_with_one_engine_per_file(tmp_path, monkeypatch):
    """The project storage writes Dagster's own SQLite files: a plain `storage: sqlite` instance over the
    same folder reads what it wrote, and the other way round; a forked process writes through its own
    engines; runs leave one engine per database, not one per statement."""
    import multiprocessing

    from dagster import AssetKey

    from resources.dagster_storage import SqliteEventLogStorageOneEngine, SqliteRunStorageOneEngine

    _asset_and_home(tmp_path, monkeypatch, "{custom: {module: resources.dagster_storage, class: SqliteStorage, "
                                           "config: {base_dir: {env: DAGSTER_HOME}}}}")
    with DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, SqliteEventLogStorageOneEngine)
        assert isinstance(instance.run_storage, SqliteRunStorageOneEngine)
        assert _materialize_counter(instance, "a")
        assert _materialize_counter(instance, "b")
        engines = instance.event_log_storage._engine_cache._engines
        assert len(engines) == 3  # the index and the two runs' databases
        ctx = multiprocessing.get_context("fork")
        child = ctx.Process(target=lambda: _materialize_counter(instance, "c") or exit(3))
        child.start()
        child.join(120)
        assert child.exitcode == 0
        assert _materialize_counter(instance, "d")  # the parent's pooled connections still work after the fork
    _asset_and_home(tmp_path, monkeypatch, "{sqlite: {base_dir: {env: DAGSTER_HOME}}}")
    with DagsterInstance.get() as plain:
        assert type(plain.event_log_storage).__name__ == "SqliteEventLogStorage"
        status = plain.get_materialized_partitions(AssetKey("counter"))
        assert status == {"a", "b", "c", "d"}
        assert _materialize_counter(plain, "e")
    _asset_and_home(tmp_path, monkeypatch, "{custom: {module: resources.dagster_storage, class: SqliteStorage, "
                                           "config: {base_dir: {env: DAGSTER_HOME}}}}")
    with DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(AssetKey("counter")) == {"a", "b", "c", "d", "e"}
        instance.wipe()
        assert instance.get_materialized_partitions(AssetKey("counter")) == set()
        assert _materialize_counter(instance, "f")
        assert instance.get_materialized_partitions(AssetKey("counter")) == {"f"}


@pytest.mark.parametrize("mode, expected", [("off", 0), ("normal", 1), ("full", 2), (None, 2)])
def test_sqlite_synchronous_from_environment(tmp_path, monkeypatch, mode, expected):
    """$BENCHGEN_SQLITE_SYNC reaches every connection of the instance's engines (unset: SQLite's default)."""
    from sqlalchemy import text

    if mode:
        monkeypatch.setenv("BENCHGEN_SQLITE_SYNC", mode)
    else:
        monkeypatch.delenv("BENCHGEN_SQLITE_SYNC", raising=False)
    shutil.copy(default_dagster_home() / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        with instance.event_log_storage.index_connection() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == expected
        with instance.run_storage.connect() as conn:
            assert conn.execute(text("PRAGMA synchronous")).scalar() == expected


def test_bad_sqlite_synchronous_is_a_clear_error(monkeypatch):
    from resources.dagster_storage import use_fast_sqlite_commits

    monkeypatch.setenv("BENCHGEN_SQLITE_SYNC", "sometimes")
    with pytest.raises(SystemExit, match=r"BENCHGEN_SQLITE_SYNC must be off, normal or full, not 'sometimes'"):
        use_fast_sqlite_commits()
