"""A MemoryState that counts the work a record does on it: calls and bytes moved. The key/value contract has no
scans, so per-record work that grows with the state shows in these counts, deterministically (unlike timings)."""

from __future__ import annotations

from edream.runtime.state import MemoryState


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.bytes = 0

    def get(self, key: str) -> bytes | None:
        value = super().get(key)
        self.calls += 1
        self.bytes += len(value or b"")
        return value

    def set(self, key: str, value: bytes) -> None:
        self.calls += 1
        self.bytes += len(value)
        super().set(key, value)

    def delete(self, key: str) -> None:
        self.calls += 1
        super().delete(key)

    def work(self) -> tuple[int, int]:
        return self.calls, self.bytes
