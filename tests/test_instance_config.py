"""The tracked dagster.yaml gives a working instance: SQLite storage, a bounded run queue."""

import json
import shutil
from typing import Optional

import pytest

from dagster import DagsterInstance
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.storage.runs import SqliteRunStorage

from resources.paths import default_dagster_home
from tests.postgres import POSTGRES_BIN, create_database, postgres_storage, throwaway_postgres


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
    from resources.instance_settings import use_cli_instance_settings

    monkeypatch.setenv("BENCHGEN_SQLITE_SYNC", "sometimes")
    with pytest.raises(SystemExit, match=r"BENCHGEN_SQLITE_SYNC must be off, normal or full, not 'sometimes'"):
        use_cli_instance_settings()


def _materialize_range(instance, assets: list, keys: list[str]):
    """One run of ``assets`` over the range of ``keys``, added first as partitions of "things"."""
    from dagster import materialize
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    instance.add_dynamic_partitions("things", keys)
    result = materialize(assets, instance=instance,
                         tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]})
    assert result.success
    return result


def _range_run_records(home, monkeypatch, storage_yaml: str, batch_size: str) -> dict:
    """A range run over 5 dynamic partitions of two assets; what the instance then holds about it."""
    from dagster import AssetKey, DagsterEventType, DynamicPartitionsDefinition, EventRecordsFilter, asset

    home.mkdir()
    _asset_and_home(home, monkeypatch, storage_yaml)
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    parts = DynamicPartitionsDefinition(name="things")

    @asset(partitions_def=parts)
    def first(context) -> None:
        for key in context.partition_keys:
            context.add_asset_metadata({"key": key}, partition_key=key)

    @asset(partitions_def=parts, deps=[first])
    def second() -> None:
        pass

    with DagsterInstance.get() as instance:
        result = _materialize_range(instance, [first, second], [f"p{i}" for i in range(5)])
        out = {"run_events": [e.dagster_event_type for e in instance.all_logs(result.run_id) if e.is_dagster_event]}
        for name in ("first", "second"):
            key = AssetKey(name)
            for kind in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
                records = instance.get_event_records(EventRecordsFilter(event_type=kind, asset_key=key))
                out[f"{name} {kind.value}"] = sorted(r.partition_key for r in records)
            out[f"{name} materialized"] = sorted(instance.get_materialized_partitions(key))
            out[f"{name} metadata"] = sorted(str(r.asset_materialization.metadata) for r in instance.fetch_materializations(key, limit=10).records)
            out[f"{name} last run"] = instance.get_latest_materialization_event(key).run_id == result.run_id
    return out


def test_batched_event_writes_store_what_dagster_stores_event_by_event(tmp_path, monkeypatch):
    """The project storage writes a batch (planned events, a range step's materializations) in one
    transaction per database: the instance then holds exactly what Dagster's own SQLite storage holds
    after writing the same run event by event."""
    ours = _range_run_records(tmp_path / "ours", monkeypatch, "{custom: {module: resources.dagster_storage, class: "
                              "SqliteStorage, config: {base_dir: {env: DAGSTER_HOME}}}}", "1000")
    dagsters = _range_run_records(tmp_path / "plain", monkeypatch, "{sqlite: {base_dir: {env: DAGSTER_HOME}}}", "0")
    assert ours["first ASSET_MATERIALIZATION"] == ["p0", "p1", "p2", "p3", "p4"]
    assert ours["second ASSET_MATERIALIZATION_PLANNED"] == ["p0", "p1", "p2", "p3", "p4"]
    assert ours == dagsters


def _run_database_schema(home, monkeypatch, storage_yaml: str) -> dict:
    """A run in a new instance; the schema and alembic revision of its run database and of the index."""
    import sqlite3

    home.mkdir()
    _asset_and_home(home, monkeypatch, storage_yaml)
    with DagsterInstance.get() as instance:
        assert _materialize_counter(instance, "k")
        run_id = instance.get_runs(limit=1)[0].run_id
    out = {}
    for name in (run_id, "index"):
        with sqlite3.connect(home / "history" / "runs" / f"{name}.db") as db:
            out[name if name == "index" else "run"] = {
                "schema": sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str),
                "alembic": db.execute("SELECT version_num FROM alembic_version").fetchall(),
                "journal": db.execute("PRAGMA journal_mode").fetchone()}
    return out


def test_a_new_run_database_is_the_one_dagster_makes(tmp_path, monkeypatch):
    """The project storage makes a run's database with alembic's scripts read once per process: the
    tables, indexes, journal mode and alembic revision are those of Dagster's own SQLite storage."""
    ours = _run_database_schema(tmp_path / "ours", monkeypatch, "{custom: {module: resources.dagster_storage, class: "
                                "SqliteStorage, config: {base_dir: {env: DAGSTER_HOME}}}}")
    dagsters = _run_database_schema(tmp_path / "plain", monkeypatch, "{sqlite: {base_dir: {env: DAGSTER_HOME}}}")
    assert ours["run"]["alembic"] and ours["run"]["journal"] == ("wal",)
    assert any(name == "event_logs" for _, name, _ in ours["run"]["schema"])
    assert ours == dagsters


def test_dynamic_partitions_are_reread_after_every_change_from_any_process(tmp_path, monkeypatch):
    """The storage reuses the list of dynamic partitions it read, until a change: an add or a delete
    made by another instance (another process of the same DAGSTER_HOME) is seen at the next read."""
    import multiprocessing

    shutil.copy(default_dagster_home() / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))

    def in_another_process(action, key):
        child = multiprocessing.get_context("spawn").Process(target=_change_partitions, args=(str(tmp_path), action, key))
        child.start()
        child.join(120)
        assert child.exitcode == 0

    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("things", ["a", "b"])
        assert instance.get_dynamic_partitions("things") == ["a", "b"]
        assert instance.get_dynamic_partitions("things") == ["a", "b"]  # from the cache
        in_another_process("add", "c")
        assert instance.get_dynamic_partitions("things") == ["a", "b", "c"]
        in_another_process("delete", "c")
        in_another_process("add", "d")  # same count, the deleted key's place reused
        assert instance.get_dynamic_partitions("things") == ["a", "b", "d"]
        _change_partitions(str(tmp_path), "delete", "a")  # another instance in this process
        assert instance.get_dynamic_partitions("things") == ["b", "d"]
        instance.wipe()
        assert instance.get_dynamic_partitions("things") == []


def _change_partitions(home: str, action: str, key: str) -> None:
    import os

    os.environ["DAGSTER_HOME"] = home
    with DagsterInstance.get() as instance:
        if action == "add":
            instance.add_dynamic_partitions("things", [key])
        else:
            instance.delete_dynamic_partition("things", key)


@pytest.mark.parametrize("echo", ["0", "1"])
def test_step_output_is_captured_with_or_without_the_echo(tmp_path, monkeypatch, echo):
    """The project's compute logs: a step's stdout lands in the captured file the UI reads (and the
    capture is marked complete) either way; with $BENCHGEN_ECHO_STEP_OUTPUT=0 (the CLIs) no echo
    processes are started, with the default Dagster's tail processes echo it."""
    import resource

    from dagster import asset, materialize

    from resources.dagster_compute_logs import LocalComputeLogs

    shutil.copy(default_dagster_home() / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("BENCHGEN_ECHO_STEP_OUTPUT", echo)

    @asset
    def talker() -> None:
        print("hello from the step", flush=True)

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with DagsterInstance.get() as instance:
        assert isinstance(instance.compute_log_manager, LocalComputeLogs)
        run_id = materialize([talker], instance=instance).run_id
    spawned = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime > children.ru_utime
    logs = tmp_path / "storage" / run_id / "compute_logs"
    assert [p.read_text() for p in logs.glob("*.out")] == ["hello from the step\n"]
    assert sorted(p.stem for p in logs.glob("*.complete")) == [p.stem for p in logs.glob("*.out")]
    assert spawned == (echo == "1")


def _checked_range_run_events(home, monkeypatch, storage: Optional[dict] = None) -> list:
    """The events of a range run over 4 dynamic partitions: planned events, materializations with tags
    (data versions), and per-partition check evaluations (one failing) logged as one batch; on the
    project's SQLite storage, or ``storage``."""
    from dagster import AssetCheckEvaluation, AssetCheckSpec, DynamicPartitionsDefinition, asset, multi_asset_check

    from teacher_assets.defs.checks import _log_as_one_batch

    home.mkdir()
    _asset_and_home(home, monkeypatch, json.dumps(storage) if storage else "{custom: {module: resources.dagster_storage, "
                                       "class: SqliteStorage, config: {base_dir: {env: DAGSTER_HOME}}}}")
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    parts = DynamicPartitionsDefinition(name="things")

    @asset(partitions_def=parts)
    def first(context) -> None:
        for key in context.partition_keys:
            context.add_asset_metadata({"key": key}, partition_key=key)

    @multi_asset_check(specs=[AssetCheckSpec(name, asset=first, partitions_def=parts) for name in ("small", "even")],
                       can_subset=True)
    def first_checks(context):
        _log_as_one_batch(context, [AssetCheckEvaluation(asset_key=first.key, check_name=name, partition=key,
                                                         passed=name == "small" or key != "p2")
                                    for key in context.partition_keys for name in ("small", "even")])
        yield from ()  # the evaluations are logged, as the teacher's range checks log theirs

    with DagsterInstance.get() as instance:
        result = _materialize_range(instance, [first, first_checks], [f"p{i}" for i in range(4)])
        return list(instance.all_logs(result.run_id))


def _rows(url: str) -> dict:
    """Every table of a database, its rows in insertion order, without the stamps of when the database
    and its rows were created (the secondary-index markers, columns that default to the current time)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        inspector, out = sqlalchemy.inspect(engine), {}
        with engine.connect() as conn:
            for name in sorted(set(inspector.get_table_names()) - {"secondary_indexes"}):
                columns = inspector.get_columns(name)
                kept = [sqlalchemy.column(c["name"]) for c in columns
                        if "CURRENT_TIMESTAMP" not in str(c.get("default")).upper() and "now()" not in str(c.get("default"))]
                order = "id" if any(c["name"] == "id" for c in columns) else kept[0].name
                out[name] = conn.execute(sqlalchemy.select(*kept).select_from(sqlalchemy.table(name))
                                         .order_by(sqlalchemy.column(order))).fetchall()
    finally:
        engine.dispose()
    return out


def _tables(folder) -> dict:
    return {db.stem if db.stem == "index" else "run": _rows(f"sqlite:///{db}") for db in sorted(folder.glob("*.db"))}


def test_event_batches_write_the_rows_dagster_writes_event_by_event(tmp_path, monkeypatch):
    """A run's events stored as batches (one per kind of event as a range run hands them over, and all
    in one) leave every table of the run's database and of the index, row for row and id for id, as
    Dagster's own SQLite storage leaves them storing the events one at a time."""
    from itertools import groupby

    from dagster._core.storage.event_log import SqliteEventLogStorage

    from resources.dagster_storage import SqliteEventLogStorageOneEngine

    events = _checked_range_run_events(tmp_path / "home", monkeypatch)
    kinds = [e.dagster_event_type for e in events]
    assert kinds.count("ASSET_CHECK_EVALUATION") == 8 and kinds.count("ASSET_MATERIALIZATION") == 4

    dagsters = SqliteEventLogStorage(str(tmp_path / "dagster"))
    for event in events:
        dagsters.store_event(event)
    expected = _tables(tmp_path / "dagster")
    assert expected["index"]["asset_event_tags"] and expected["index"]["asset_check_executions"]
    assert sum(row[5] == "FAILED" for row in expected["index"]["asset_check_executions"]) == 1

    by_kind = [list(group) for _, group in groupby(events, key=lambda e: e.dagster_event_type)]
    for name, batches in (("by_kind", by_kind), ("all_in_one", [events])):
        ours = SqliteEventLogStorageOneEngine(str(tmp_path / name))
        for batch in batches:
            ours.store_event_batch(batch)
        ours.dispose()
        assert _tables(tmp_path / name) == expected, name


@pytest.mark.skipif(not POSTGRES_BIN.is_dir(), reason="needs the PostgreSQL 15 server binaries")
def test_postgres_event_batches_write_the_rows_dagster_writes_event_by_event(tmp_path, monkeypatch, capfd):
    """The same on the deployed Postgres storage, whose Dagster original refuses a batch of check
    evaluations (saying "Exception while storing event batch") and then writes it one event at a time.
    The run itself is made on the deployed storage, without that message; then, in one database
    Dagster's Postgres event log stores its events one at a time, in another ours stores them as batches."""
    from itertools import groupby

    from dagster_postgres.event_log import PostgresEventLogStorage

    from resources.dagster_postgres_storage import PostgresEventLogStorageCachedPartitions

    with throwaway_postgres() as port:
        events = _checked_range_run_events(tmp_path / "home", monkeypatch, postgres_storage(port))
        assert "Exception while storing event batch" not in capfd.readouterr().err
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{port}"
        for name in ("reference", "by_kind", "all_in_one"):
            create_database(port, name)

        dagsters = PostgresEventLogStorage(f"{url}/reference")
        for event in events:
            dagsters.store_event(event)
        dagsters.dispose()
        expected = _rows(f"{url}/reference")
        assert sum(row.execution_status == "FAILED" for row in expected["asset_check_executions"]) == 1
        assert len(expected["event_logs"]) == len(events) and expected["asset_event_tags"]

        by_kind = [list(group) for _, group in groupby(events, key=lambda e: e.dagster_event_type)]
        for name, batches in (("by_kind", by_kind), ("all_in_one", [events])):
            ours = PostgresEventLogStorageCachedPartitions(f"{url}/{name}")
            for batch in batches:
                ours.store_event_batch(batch)
            ours.dispose()
            assert _rows(f"{url}/{name}") == expected, name
