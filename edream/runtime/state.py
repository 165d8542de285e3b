"""Record-atomic state: a record's writes reach the partition store only if the record was processed.

:class:`RecordState` buffers ``set``/``delete`` of one record over the partition's store and applies them on
:meth:`commit`; reads see the buffer first. A processor that raises half way leaves the store as it was, so the
dead-lettered record cannot poison the state (the fault that made earlier snapshots crash again on restart).
"""

from __future__ import annotations

from typing import Any

_DELETED = object()


class RecordState:
    def __init__(self, store: Any):
        self._store = store
        self._writes: dict[str, Any] = {}

    def get(self, key: str) -> bytes | None:
        v = self._writes.get(key)
        if v is not None:
            return None if v is _DELETED else v
        return self._store.get_bytes(key)

    def set(self, key: str, value: bytes) -> None:
        self._writes[key] = value

    def delete(self, key: str) -> None:
        self._writes[key] = _DELETED

    def commit(self) -> None:
        for k, v in self._writes.items():
            if v is _DELETED:
                self._store.delete(k)
            else:
                self._store.set_bytes(k, v)
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
