"""The deployed instance's Postgres storage: Dagster's own (dagster-postgres), with the dynamic-partition
list read once per change and event batches written as multi-row statements.

Dagster re-reads the whole list of a dynamic partitions definition on every
``add_asset_metadata(partition_key=…)`` (to check the key is in the run's range) and asks for single
keys many times per partition of a range run: at 100,000 episodes that is ~0.1 s per read, 7 reads
per episode. Here each read first asks Postgres for the list's size and newest row id (one
index-only query): an add raises the newest id, a delete lowers the size, so the list read before
is reused while both are unchanged, by any process on any host. A list is cached with the version
read before it, so it is never older than its version.

``storage: custom: {module: resources.dagster_postgres_storage, class: PostgresStorage, config: <the
postgres block>}`` (deploy/dagster.postgres.yaml); it needs the ``postgres`` extra.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import ContextManager, Optional, Sequence

import sqlalchemy as db
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import DynamicPartitionsTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.storage import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import Connection

from resources.dagster_event_batches import MultiRowEventBatches


class PostgresEventLogStorageCachedPartitions(MultiRowEventBatches, PostgresEventLogStorage):
    """Dagster's Postgres event log; dynamic partitions from a list cached per (size, newest id); any
    batch of events written as multi-row statements in one transaction (``dagster_event_batches``)."""

    def __init__(self, *args, **kwargs):
        self._partitions_cache: dict[str, tuple[tuple, tuple[str, ...], frozenset[str]]] = {}
        self._batch = threading.local()  # .conn: the transaction of the batch this thread is writing
        super().__init__(*args, **kwargs)

    def _connect(self) -> ContextManager[Connection]:
        held = getattr(self._batch, "conn", None)  # Dagster's own writes inside a batch join its transaction
        return nullcontext(held) if held is not None else super()._connect()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        # All or nothing: on an error Dagster writes the batch again event by event.
        with self.index_transaction() as conn:
            self._batch.conn = conn
            try:
                self._store_rows(events, conn)
            finally:
                del self._batch.conn

    def _partitions_version(self, partitions_def_name: str) -> tuple:
        query = (db.select(db.func.count(), db.func.max(DynamicPartitionsTable.c.id))
                 .where(DynamicPartitionsTable.c.partitions_def_name == partitions_def_name))
        with self.index_connection() as conn:
            return tuple(conn.execute(query).one())

    def _cached(self, partitions_def_name: str) -> tuple[tuple, tuple[str, ...], frozenset[str]]:
        self._check_partitions_table()
        version = self._partitions_version(partitions_def_name)
        cached = self._partitions_cache.get(partitions_def_name)
        if cached is None or cached[0] != version:
            keys = tuple(super().get_dynamic_partitions(partitions_def_name))
            cached = self._partitions_cache[partitions_def_name] = (version, keys, frozenset(keys))
        return cached

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        return list(self._cached(partitions_def_name)[1])

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        cached = self._partitions_cache.get(partitions_def_name)
        if cached is None:  # nothing read yet: one key is cheaper to ask for than the whole list
            return super().has_dynamic_partition(partitions_def_name, partition_key)
        return partition_key in self._cached(partitions_def_name)[2]


class PostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` with the event log above; the same tables, config and migrations."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: Optional[ConfigurableClassData] = None, token_provider=None):
        # Dagster's __init__, with our event log in place of its own (not one of each).
        self.postgres_url = postgres_url
        self.should_autocreate_tables = should_autocreate_tables
        self._inst_data = inst_data
        self._run_storage = PostgresRunStorage(postgres_url, should_autocreate_tables, token_provider=token_provider)
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
