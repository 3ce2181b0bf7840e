"""The project instance's SQLite storage: Dagster's own SQLite run, event-log and schedule storages,
with one SQLAlchemy engine per database file instead of one per statement batch.

Dagster's SQLite storages build (and throw away) an engine for every connection they open, i.e.
2-3 times per stored event, and SQLAlchemy's compiled-statement cache lives in the engine: in a
teacher range run over 40 episodes that is ~1,500 engines, ~4,000 statement compilations and as
many SQLite connections opened and closed, more than half the run's CPU. Here each database has one
engine with a small pool of connections (see ``EngineCache`` for forks and open files); the schema
checks, tables and files are Dagster's, so an existing ``dagster_home`` works unchanged.

A batch of events (a run's planned events, a range step's materializations) is written in one
transaction per database instead of two per event. ``$BENCHGEN_SQLITE_SYNC`` (``off`` | ``normal``
| ``full``, SQLite's ``PRAGMA synchronous``; unset: SQLite's default, ``full``) applies to these
connections. The CLIs default it to ``off`` (``use_fast_event_writes``): every event is a commit,
and an fsync per commit costs more than the event itself on a busy disk; a killed process still
loses nothing, an OS crash mid-run may.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

from dagster._core.events import ASSET_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite_storage import (DagsterSqliteStorage, _event_logs_directory, _runs_directory,
                                                  _schedule_directory)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

from resources.atomic import atomic_write_bytes

SQLITE_SYNC_ENV = "BENCHGEN_SQLITE_SYNC"
SYNC_MODES = ("OFF", "NORMAL", "FULL")
# Dagster hands a run's planned events, and a range step's materializations, to the storage as one
# batch only when this is set (Postgres writes a batch at once; so does the storage below).
EVENT_BATCH_ENV, EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE", "1000"


def sqlite_synchronous() -> Optional[str]:
    """``PRAGMA synchronous`` from ``$BENCHGEN_SQLITE_SYNC``; None: unset, SQLite's default."""
    value = os.environ.get(SQLITE_SYNC_ENV, "").strip().upper()
    if not value:
        return None
    if value not in SYNC_MODES:
        raise ValueError(f"${SQLITE_SYNC_ENV} must be off, normal or full, not {value.lower()!r}")
    return value


def use_fast_event_writes() -> None:
    """For the CLIs' runs (and the workers they start, which inherit the environment): SQLite commits
    without fsync unless ``$BENCHGEN_SQLITE_SYNC`` says otherwise (checked here, before any work),
    and Dagster's event batches on (``$DAGSTER_EVENT_BATCH_SIZE``, also set by scripts/env.sh)."""
    os.environ.setdefault(SQLITE_SYNC_ENV, "off")
    os.environ.setdefault(EVENT_BATCH_ENV, EVENT_BATCH_SIZE)
    try:
        sqlite_synchronous()
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


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
                event.listen(engine, "connect", lambda dbapi_conn, _record: dbapi_conn.execute(f"PRAGMA synchronous={mode}"))
            self._engines[url] = engine
            while len(self._engines) > self._most:
                self._engines.popitem(last=False)[1].dispose()
            return engine

    def dispose(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.dispose(close=self._pid == os.getpid())
            self._engines.clear()


class SqliteEventLogStorageOneEngine(SqliteEventLogStorage):
    """Dagster's SQLite event log (a database per run plus the index shard), an engine per database."""

    def __init__(self, base_dir: str, inst_data: Optional[ConfigurableClassData] = None):
        self._engine_cache = EngineCache()
        self._tables_seen: set[str] = set()
        self._partitions_cache: dict[str, tuple[str, tuple[str, ...]]] = {}
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Dagster's own _connect, minus the engine per call.
        with self._db_lock:
            engine = self._engine_cache.engine(self.conn_string_for_shard(shard), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                with conn.begin():
                    yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # Dagster's SQLite storage writes a batch event by event, a transaction on the run's database
        # and one on the index each; here one of each for the whole batch, the same rows as store_event.
        if len({e.run_id for e in events}) != 1 or not all(
                e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS for e in events):
            return super().store_event_batch(events)
        statements = [self.prepare_insert_event(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            for statement in statements:
                conn.execute(statement)
        with self.index_transaction() as conn:
            event_ids = []
            for statement in statements:
                with db_result(conn, statement) as result:
                    event_ids.append(result.inserted_primary_key[0])
            self._store_asset_event_tags(conn, events, event_ids)
            for event, event_id in zip(events, event_ids):
                self._store_asset_event(conn, event, event_id)

    # Dynamic partitions, read once per change. Dagster re-reads the whole list on every
    # `add_asset_metadata(partition_key=…)` (to check the key is in the run's range): 7 times per
    # episode in a teacher range run, 0.2 s each at 100,000 partitions. Every change made through this
    # storage (add, delete, wipe) writes a new token to a file beside the index, before its commit and
    # after it; a reader reuses its list while the token is the one it read before querying.
    @property
    def _partitions_token_path(self) -> str:
        return os.path.join(self._base_dir, "dynamic_partitions.token")

    def _partitions_token(self) -> Optional[str]:
        try:
            with open(self._partitions_token_path) as f:
                return f.read() or None
        except FileNotFoundError:
            return None

    def _partitions_changed(self) -> None:
        atomic_write_bytes(self._partitions_token_path, uuid.uuid4().hex.encode(), durable=False)

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        token = self._partitions_token()
        cached = self._partitions_cache.get(partitions_def_name)
        if token is not None and cached is not None and cached[0] == token:
            return list(cached[1])
        keys = super().get_dynamic_partitions(partitions_def_name)
        if token is not None:  # None: no change made through this storage yet, nothing to go by
            self._partitions_cache[partitions_def_name] = (token, tuple(keys))
        return keys

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        self._partitions_changed()
        super().add_dynamic_partitions(partitions_def_name, partition_keys)
        self._partitions_changed()

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        self._partitions_changed()
        super().delete_dynamic_partition(partitions_def_name, partition_key)
        self._partitions_changed()

    def wipe(self) -> None:
        self._engine_cache.dispose()  # pooled connections would keep the deleted run databases alive
        self._partitions_changed()
        super().wipe()
        self._partitions_changed()

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
