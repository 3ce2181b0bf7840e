"""Dynamic partitions read once per change, for the project's SQLite and Postgres event logs.

Dagster re-reads the whole list of a dynamic partitions definition on every
``add_asset_metadata(partition_key=…)`` (to check the key is in the run's range) and asks for single
keys ~17 times per partition of a range run: at 100,000 episodes a teacher run spent most of its
time there. Here every change made through the project's storages (add, delete, wipe) also writes a
new token where every process and host of the instance reads it (SQLite: a file beside the index;
Postgres: a row of Dagster's key-value table); a reader reuses the list it read while the token is
the one it read before querying. A change made with another storage class is not seen until the
next change made through these: every configuration of the project uses them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Optional, Sequence


class CachedDynamicPartitions:
    """For a subclass of Dagster's ``SqlEventLogStorage`` that says where its token is:
    ``_partitions_token()`` reads it (None: no change made through these storages yet, nothing to go
    by), ``_changing_partitions()`` wraps a change so that a reader can never keep a list older than
    the token it read."""

    def __init__(self, *args, **kwargs):
        self._partitions_cache: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {}
        super().__init__(*args, **kwargs)

    def _partitions_token(self) -> Optional[str]:
        raise NotImplementedError

    def _changing_partitions(self) -> AbstractContextManager:
        raise NotImplementedError

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        token = self._partitions_token()
        cached = self._partitions_cache.get(partitions_def_name)
        if token is not None and cached is not None and cached[0] == token:
            return list(cached[1])
        keys = super().get_dynamic_partitions(partitions_def_name)
        if token is not None:
            self._partitions_cache[partitions_def_name] = (token, tuple(keys), frozenset(keys))
        return keys

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        cached = self._partitions_cache.get(partitions_def_name)
        if cached is not None and cached[0] == self._partitions_token():
            return partition_key in cached[2]
        return super().has_dynamic_partition(partitions_def_name, partition_key)

    def add_dynamic_partitions(self, partitions_def_name: str, partition_keys: Sequence[str]) -> None:
        with self._changing_partitions():
            super().add_dynamic_partitions(partitions_def_name, partition_keys)

    def delete_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> None:
        with self._changing_partitions():
            super().delete_dynamic_partition(partitions_def_name, partition_key)

    def wipe(self) -> None:
        with self._changing_partitions():
            super().wipe()
