"""The deployed instance's Postgres storage: Dagster's own (dagster-postgres), with pooled connections,
event batches written as multi-row statements and the dynamic-partition list read once per change.

``storage: custom: {module: resources.dagster_postgres_storage, class: PostgresStorage, config: <the
postgres block>}`` (deploy/dagster.postgres.yaml); it needs the ``postgres`` extra.
"""

from __future__ import annotations

import os
import threading
import uuid
import weakref
from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, Optional, Sequence

import sqlalchemy as db
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.runs.schema import KeyValueStoreTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from resources.dagster_event_batches import MultiRowEventBatches
from resources.dagster_partitions_cache import CachedDynamicPartitions

PARTITIONS_TOKEN_KEY = "benchgen/dynamic_partitions_token"


def pool_connections(storage) -> None:
    """Give one of Dagster's Postgres storages a small pool of connections in place of a new one per
    statement (its default outside the webserver, which pools too): a teacher range run opened and
    closed thousands, a third of its time even against a local server. A forked process leaves the
    parent's connections alone and opens its own (SQLAlchemy's recipe for pools across a fork)."""
    engine = create_pg_engine(storage.postgres_url, storage._token_provider, isolation_level="AUTOCOMMIT",
                              pool_size=2, max_overflow=8, pool_recycle=3600, pool_pre_ping=True)
    storage._engine.dispose()
    storage._engine = engine
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: (e := ref()) is not None and e.dispose(close=False))


class PostgresEventLogStorageCachedPartitions(MultiRowEventBatches, CachedDynamicPartitions, PostgresEventLogStorage):
    """Dagster's Postgres event log with pooled connections; any batch of events written as multi-row
    statements in one transaction (``dagster_event_batches``); dynamic partitions read once per change
    (``dagster_partitions_cache``), the token a row of Dagster's key-value table."""

    def __init__(self, *args, **kwargs):
        self._batch = threading.local()  # .conn: the transaction this thread holds
        super().__init__(*args, **kwargs)
        pool_connections(self)
        # Made by the run storage, in the same database (a bare event log, e.g. in a test, has none).
        self._has_kvs = KeyValueStoreTable.name in db.inspect(self._engine).get_table_names()

    def _connect(self) -> ContextManager[Connection]:
        held = getattr(self._batch, "conn", None)  # Dagster's own statements join a held transaction
        return nullcontext(held) if held is not None else super()._connect()

    @contextmanager
    def _held_transaction(self) -> Iterator[Connection]:
        with self.index_transaction() as conn:
            self._batch.conn = conn
            try:
                yield conn
            finally:
                del self._batch.conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # All or nothing: on an error Dagster writes the batch again event by event.
        with self._held_transaction() as conn:
            self._store_rows(events, conn)

    def _partitions_token(self) -> Optional[str]:
        if not self._has_kvs:
            return None
        with self.index_connection() as conn:
            return conn.execute(db.select(KeyValueStoreTable.c.value)
                                .where(KeyValueStoreTable.c.key == PARTITIONS_TOKEN_KEY)).scalar()

    @contextmanager
    def _changing_partitions(self) -> Iterator[None]:
        # The change and its new token commit together: no reader keeps the old list under the new token.
        with self._held_transaction() as conn:
            yield
            if self._has_kvs:
                token = uuid.uuid4().hex
                conn.execute(pg_insert(KeyValueStoreTable).values(key=PARTITIONS_TOKEN_KEY, value=token)
                             .on_conflict_do_update(index_elements=[KeyValueStoreTable.c.key], set_={"value": token}))


class PostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` with the event log above; the same tables, config and migrations."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: Optional[ConfigurableClassData] = None, token_provider=None):
        # Dagster's __init__, with our event log in place of its own (not one of each).
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PostgresRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
        pool_connections(self._run_storage)
        self._event_log_storage = PostgresEventLogStorageCachedPartitions(
            postgres_url, should_autocreate_tables, token_provider=token_provider)
        self._schedule_storage = PostgresScheduleStorage(postgres_url, should_autocreate_tables,
                                                         token_provider=token_provider)
        super(DagsterPostgresStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> "PostgresStorage":  # the parent's names its own class
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))
