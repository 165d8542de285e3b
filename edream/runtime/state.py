"""Record-atomic state: a record's writes reach the partition store only if the record was processed.

:class:`RecordState` buffers ``set``/``delete`` of one record over the partition's store and applies them on
:meth:`commit`; reads see the buffer first. A processor that raises half way leaves the store as it was, so the
dead-lettered record cannot poison the state (the fault that made earlier snapshots crash again on restart).

Reads may go through a :class:`ReadCache` of the partition's current store transaction: a key read again in the
same transaction (a partition-wide key every record reads, such as the interval stage's clock) is answered from
memory instead of RocksDB. The stage is the store's only writer and every committed write passes through the
cache, so the cache holds exactly what the store would return; a new transaction (each checkpoint, each
rebalance or restart) starts an empty cache.
"""

from __future__ import annotations

from typing import Any

_DELETED = object()


class ReadCache:
    """Values of one partition's store within one store transaction (``owner``): key -> bytes or None (absent).
    At most ``max_keys`` keys; beyond that it starts over (it only saves reads)."""

    def __init__(self, owner: Any, max_keys: int = 50_000):
        self.owner = owner
        self.max_keys = max_keys
        self.values: dict[str, bytes | None] = {}

    def put(self, key: str, value: bytes | None) -> None:
        if len(self.values) >= self.max_keys:
            self.values.clear()
        self.values[key] = value


class RecordState:
    def __init__(self, store: Any, cache: ReadCache | None = None):
        self._store = store
        self._cache = cache
        self._writes: dict[str, Any] = {}

    def get(self, key: str) -> bytes | None:
        v = self._writes.get(key)
        if v is not None:
            return None if v is _DELETED else v
        cache = self._cache
        if cache is None:
            return self._store.get_bytes(key)
        try:
            return cache.values[key]
        except KeyError:
            v = self._store.get_bytes(key)
            cache.put(key, v)
            return v

    def set(self, key: str, value: bytes) -> None:
        self._writes[key] = value

    def delete(self, key: str) -> None:
        self._writes[key] = _DELETED

    def commit(self) -> None:
        cache = self._cache
        for k, v in self._writes.items():
            if v is _DELETED:
                self._store.delete(k)
                v = None
            else:
                self._store.set_bytes(k, v)
            if cache is not None:
                cache.put(k, v)
        self._writes.clear()


class MemoryState:
    """A plain dict store with the same interface (unit tests of processors, benchmarks)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)
