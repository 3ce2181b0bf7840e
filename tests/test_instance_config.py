"""The tracked dagster.yaml gives a working instance: SQLite storage, a bounded run queue."""

import shutil

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
