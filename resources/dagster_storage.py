"""The project instance's SQLite storage: Dagster's own SQLite run, event-log and schedule storages,
with one SQLAlchemy engine per database file instead of one per statement batch.

Dagster's SQLite storages build (and throw away) an engine for every connection they open, i.e.
2-3 times per stored event, and SQLAlchemy's compiled-statement cache lives in the engine: in a
teacher range run over 40 episodes that is ~1,500 engines and ~4,000 statement compilations,
a quarter of the run's CPU. The engines kept here use ``NullPool`` as Dagster's do, so no
connection outlives its transaction and nothing is shared across processes or forks; the
schema checks, tables and files are Dagster's, so an existing ``dagster_home`` works unchanged.

``$BENCHGEN_SQLITE_SYNC`` (``off`` | ``normal`` | ``full``, SQLite's ``PRAGMA synchronous``; unset:
SQLite's default, ``full``) applies to these connections. The CLIs default it to ``off``
(``use_fast_sqlite_commits``): every event is a commit, and an fsync per commit costs more than the
event itself on a busy disk; a killed process still loses nothing, an OS crash mid-run may.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator, Optional

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SQLITE_BUSY_TIMEOUT_SECONDS, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (DagsterSqliteStorage, _event_logs_directory, _runs_directory,
                                                  _schedule_directory)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

SQLITE_SYNC_ENV = "BENCHGEN_SQLITE_SYNC"
SYNC_MODES = ("OFF", "NORMAL", "FULL")


def sqlite_synchronous() -> Optional[str]:
    """``PRAGMA synchronous`` from ``$BENCHGEN_SQLITE_SYNC``; None: unset, SQLite's default."""
    value = os.environ.get(SQLITE_SYNC_ENV, "").strip().upper()
    if not value:
        return None
    if value not in SYNC_MODES:
        raise ValueError(f"${SQLITE_SYNC_ENV} must be off, normal or full, not {value.lower()!r}")
    return value


def use_fast_sqlite_commits() -> None:
    """For the CLIs' runs (and the workers they start, which inherit the environment): SQLite commits
    without fsync unless ``$BENCHGEN_SQLITE_SYNC`` says otherwise. Checked here, before any work."""
    os.environ.setdefault(SQLITE_SYNC_ENV, "off")
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
