"""Event batches written as multi-row statements, for the project's SQLite and Postgres event logs.

Dagster hands its storage batches of events (a run's planned events, a range step's
materializations; both factories' range checks hand over their evaluations the same way). Its
SQLite storage writes them event by event, a statement or more per row; its Postgres storage batches
materializations only and refuses the rest with an error message before writing them one by one.
Here a batch is written in one transaction, with the rows Dagster's own ``store_event`` writes:
each event serialized once, one multi-row insert per table (with the new ids, in order), an asset
key's row written once per kind of event, and the check evaluations' rows updated at once.
"""

from __future__ import annotations

from typing import Optional, Sequence

from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from sqlalchemy import bindparam
from sqlalchemy.engine import Connection


class MultiRowEventBatches:
    """For a subclass of Dagster's ``SqlEventLogStorage``: ``_store_rows`` writes one run's batch."""

    def _store_rows(self, events: Sequence[EventLogEntry], conn: Connection, index_conn: Optional[Connection] = None,
                    mirrored_types: frozenset = frozenset()) -> None:
        """``conn``: the run's events table. ``index_conn``: a second table that mirrors the events of
        ``mirrored_types`` and whose ids are the ones the asset and check tables point to (SQLite's
        index shard); without it, ``conn``'s ids are (Postgres's one table)."""
        rows = [self._event_to_row(event) for event in events]
        returning = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
        if index_conn is None:
            index_conn, kept = conn, list(range(len(events)))
            ids = conn.execute(returning, rows).scalars().all()
        else:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
            kept = [i for i, event in enumerate(events) if event.dagster_event_type in mirrored_types]
            ids = index_conn.execute(returning, [rows[i] for i in kept]).scalars().all() if kept else []
        stored = [(events[i], event_id, rows[i]["event"]) for i, event_id in zip(kept, ids)]
        assets = [(event, event_id) for event, event_id, _ in stored
                  if event.dagster_event_type in ASSET_EVENTS and event.dagster_event.asset_key]
        if assets:
            self._store_asset_event_tags(index_conn, [event for event, _ in assets], [event_id for _, event_id in assets])
        # Each asset event sets columns of its key's row (a materialization the last materialization, run
        # and time; a planned one the run and time): applying, in order, only the last event of each kind
        # leaves the row as applying all of them would; for a range step, one write instead of one per partition.
        last: dict[tuple, tuple[EventLogEntry, int]] = {}
        for event, event_id in assets:
            last[(event.dagster_event.asset_key, event.dagster_event_type)] = (event, event_id)
        for event, event_id in sorted(last.values(), key=lambda write: write[1]):
            self._store_asset_event(index_conn, event, event_id)
        checks = [write for write in stored if write[0].dagster_event_type in ASSET_CHECK_EVENTS]
        if checks and not self._update_check_evaluations(index_conn, checks):
            for event, event_id, _ in checks:  # Dagster's own path: inserts a missing row, refuses a duplicate
                self.store_asset_check_event(event, event_id)

    def _update_check_evaluations(self, conn: Connection, checks: list[tuple[EventLogEntry, int, str]]) -> bool:
        """Dagster's update of the execution rows its planned events made, for every evaluation at once
        and with the event as already serialized; False (nothing assumed) unless each evaluation had
        exactly its one row and the batch holds evaluations only."""
        if not conn.dialect.supports_sane_multi_rowcount or any(
                event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION for event, _, _ in checks):
            return False
        table = AssetCheckExecutionsTable
        values = []
        for event, event_id, serialized in checks:
            evaluation = event.dagster_event.event_specific_data
            target = evaluation.target_materialization_data
            values.append({
                "k_asset": evaluation.asset_key.to_string(), "k_check": evaluation.check_name,
                "k_run": event.run_id, "k_partition": evaluation.partition,
                "execution_status": (AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed
                                     else AssetCheckExecutionRecordStatus.FAILED).value,
                "evaluation_event": serialized, "evaluation_event_timestamp": self._event_insert_timestamp(event),
                "evaluation_event_storage_id": event_id,
                "materialization_event_storage_id": target.storage_id if target else None,
                "partition": evaluation.partition})
        # IS NOT DISTINCT FROM (SQLite: IS) matches a NULL partition as Dagster's `partition IS NULL` does.
        statement = table.update().where(
            table.c.asset_key == bindparam("k_asset"), table.c.check_name == bindparam("k_check"),
            table.c.run_id == bindparam("k_run"), table.c.partition.is_not_distinct_from(bindparam("k_partition")))
        return conn.execute(statement, values).rowcount == len(values)
