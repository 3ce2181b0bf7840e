"""The project instance's SQLite storage: Dagster's own SQLite run, event-log and schedule storages,
with one SQLAlchemy engine per database file instead of one per statement batch.

Dagster's SQLite storages build (and throw away) an engine for every connection they open, i.e.
2-3 times per stored event, and SQLAlchemy's compiled-statement cache lives in the engine: in a
teacher range run over 40 episodes that is ~1,500 engines, ~4,000 statement compilations and as
many SQLite connections opened and closed, more than half the run's CPU. Here each database has one
engine with a small pool of connections (see ``EngineCache`` for forks and open files); the schema
checks, tables and files are Dagster's, so an existing ``dagster_home`` works unchanged.

A batch of events (a run's planned events, a range step's materializations or check evaluations)
is written in one transaction per database instead of two or three per event, as multi-row
statements holding the rows Dagster's own code writes (``dagster_event_batches``). Alembic's
migration scripts, which Dagster reads again for every database it opens, are read once per
process; the dynamic-partition list is read once per change (``dagster_partitions_cache``).
``$BENCHGEN_SQLITE_SYNC`` (``off`` | ``normal``
| ``full``, SQLite's ``PRAGMA synchronous``; unset: SQLite's default, ``full``) applies to these
connections. The CLIs default it to ``off`` (``instance_settings.use_cli_instance_settings``): every event is a commit,
and an fsync per commit costs more than the event itself on a busy disk; a killed process still
loses nothing, an OS crash mid-run may.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections import OrderedDict
from contextlib import ExitStack, contextmanager
from typing import Iterator, Optional, Sequence

import sqlalchemy
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (INDEX_SHARD_NAME, SQLITE_BUSY_TIMEOUT_SECONDS,
                                                                     SqliteEventLogStorage)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import get_alembic_config
from dagster._core.storage.sqlite_storage import (DagsterSqliteStorage, _event_logs_directory, _runs_directory,
                                                  _schedule_directory)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from resources.atomic import atomic_write_bytes
from resources.dagster_event_batches import MultiRowEventBatches
from resources.dagster_partitions_cache import CachedDynamicPartitions
from resources.instance_settings import sqlite_synchronous

# What Dagster's SQLite store_event mirrors in the index: asset, asset check and run status events.
_MIRRORED = frozenset(ASSET_EVENTS | ASSET_CHECK_EVENTS | set(EVENT_TYPE_TO_PIPELINE_RUN_STATUS))


@functools.lru_cache(maxsize=1)
def dagster_alembic_scripts() -> ScriptDirectory:
    """Dagster's alembic scripts, read once (revision map included) for all the databases of a process."""
    from dagster._core.storage.event_log.sqlite import sqlite_event_log

    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


class EngineCache:
    """Engines by SQLite URL, their connections pooled and set to ``$BENCHGEN_SQLITE_SYNC``.

    Pooled: opening a connection per transaction (and setting its pragma) was the next biggest cost
    after the engines. At most ``most`` engines stay open (a webserver reads many runs' databases),
    the least recently used are closed. Pooled SQLite connections must not cross a fork: a forked
    process starts new pools and leaves the parent's connections alone (SQLAlchemy's recipe)."""

    def __init__(self, most: int = 16) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._most = most
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def engine(self, url: str, **connect_args) -> Engine:
        with self._lock:
            if self._pid != os.getpid():
                for inherited in self._engines.values():
                    inherited.dispose(close=False)
                self._pid = os.getpid()
            engine = self._engines.get(url)
            if engine is not None:
                self._engines.move_to_end(url)
                return engine
            # check_same_thread off: a connection is used by one thread at a time, the pool hands it on.
            engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=16,
                                   connect_args={**connect_args, "check_same_thread": False})
            mode = sqlite_synchronous()
            if mode:
                sqlalchemy.event.listen(engine, "connect", lambda dbapi_conn, _record: dbapi_conn.execute(f"PRAGMA synchronous={mode}"))
            self._engines[url] = engine
            while len(self._engines) > self._most:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose(close=self._pid == os.getpid())
            self._engines.clear()


class SqliteEventLogStorageOneEngine(MultiRowEventBatches, CachedDynamicPartitions, SqliteEventLogStorage):
    """Dagster's SQLite event log (a database per run plus the index shard), an engine per database."""

    def __init__(self, base_dir: str, inst_data: Optional[ConfigurableClassData] = None):
        self._engine_cache = EngineCache()
        self._tables_seen: set[str] = set()
        self._batch = threading.local()  # .conns: {shard: connection} of the batch this thread is writing
        super().__init__(base_dir, inst_data)
        self._db_lock = threading.RLock()  # held by a batch across its transactions, and taken again inside

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's own _connect, minus the engine per call; inside a batch, the batch's open transaction.
        held = getattr(self._batch, "conns", None)
        if held is not None and shard in held:
            yield held[shard]
            return
        with self._db_lock:
            engine = self._engine_cache.engine(self.conn_string_for_shard(shard), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        # Dagster checks each database it opens against its alembic scripts, loading all ~100 of them
        # (~10 ms) every time, twice for a new run's database. Here they are loaded once per process;
        # a new database gets what Dagster gives it (its tables, WAL, alembic's head), and anything
        # else (an index without a version, a concurrent init) is left to Dagster's own code.
        try:
            with engine.connect() as conn:
                if MigrationContext.configure(conn).get_current_revision():
                    return  # Dagster's check only reads it too: upgrades are `dagster instance migrate`'s
                if not for_index_shard and not sqlalchemy.inspect(conn).get_table_names():
                    SqlEventLogStorageMetadata.create_all(conn)
                    conn.execute(sqlalchemy.text("PRAGMA journal_mode=WAL;"))
                    MigrationContext.configure(conn).stamp(dagster_alembic_scripts(), "head")
                    conn.commit()
                    return
        except sqlalchemy.exc.DatabaseError:
            pass
        super()._initdb(engine, for_index_shard)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # One transaction per database (the run's, the index), all or nothing: on an error Dagster
        # writes the batch again event by event.
        run_ids = {e.run_id for e in events}
        if len(run_ids) != 1 or "" in run_ids:
            return super().store_event_batch(events)
        with ExitStack() as stack:
            stack.enter_context(self._db_lock)
            shards = (run_ids.pop(), INDEX_SHARD_NAME)
            self._batch.conns = {shard: stack.enter_context(self._connect(shard)) for shard in shards}
            try:
                self._store_rows(events, *self._batch.conns.values(), mirrored_types=_MIRRORED)
            finally:
                del self._batch.conns

    # Dynamic partitions read once per change (dagster_partitions_cache): the token is a file beside the index.
    @property
    def _partitions_token_path(self) -> str:
        return os.path.join(self._base_dir, "dynamic_partitions.token")

    def _partitions_token(self) -> Optional[str]:
        try:
            with open(self._partitions_token_path) as f:
                return f.read() or None
        except FileNotFoundError:
            return None

    @contextmanager
    def _changing_partitions(self) -> Iterator[None]:
        # A new token before the change and after its commit: a list read in between is read again.
        atomic_write_bytes(self._partitions_token_path, uuid.uuid4().hex.encode(), durable=False)
        yield
        atomic_write_bytes(self._partitions_token_path, uuid.uuid4().hex.encode(), durable=False)

    def wipe(self) -> None:
        self._engine_cache.dispose()  # pooled connections would keep the deleted run databases alive
        super().wipe()

    def has_table(self, table_name: str) -> bool:
        # Asked before most partition and tag queries, with an engine of its own each time; a table
        # that exists stays (schema changes need `dagster instance migrate` and a restart).
        if table_name not in self._tables_seen:
            if not super().has_table(table_name):
                return False
            self._tables_seen.add(table_name)
        return True

    def dispose(self) -> None:
        super().dispose()
        self._engine_cache.dispose()


class SqliteRunStorageOneEngine(SqliteRunStorage):
    """Dagster's SQLite run storage, one engine."""

    def __init__(self, conn_string: str, inst_data: Optional[ConfigurableClassData] = None):
        self._engine_cache = EngineCache()
        super().__init__(conn_string, inst_data)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine_cache.engine(self._conn_string).connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        super().dispose()
        self._engine_cache.dispose()


class SqliteStorage(DagsterSqliteStorage):
    """``storage: custom: {module: resources.dagster_storage, class: SqliteStorage, config: {base_dir: …}}``:
    the same files as ``storage: sqlite`` (history/, history/runs/, schedules/), faster writes."""

    def __init__(self, base_dir: str, inst_data: Optional[ConfigurableClassData] = None):
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorageOneEngine.from_local(_runs_directory(base_dir))
        self._event_log_storage = SqliteEventLogStorageOneEngine(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "SqliteStorage":  # the parent's names its own class
        return cls.from_local(inst_data=inst_data, **config_value)
