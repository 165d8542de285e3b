"""Ingest de-duplication of Measurement records; their validation lives in :mod:`streams.validation.measurement`.

:class:`DuplicateFilter` drops exact duplicates by ``(device_id, quantity, phase, ts)``. The contract checks are
re-exported here for the interval stage and the benchmarks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from streams.validation.measurement import (
    MIN_TS_MS,
    OK,
    REQUIRED_FIELDS,
    ValidationConfig,
    Verdict,
    check_measurement,
    validate_measurement,
)

__all__ = [
    "MIN_TS_MS",
    "OK",
    "REQUIRED_FIELDS",
    "DuplicateFilter",
    "ValidationConfig",
    "Verdict",
    "check_measurement",
    "dedup_key",
    "validate_measurement",
]

DedupKey = tuple[str, str, str, int]


def dedup_key(rec: Mapping[str, Any]) -> DedupKey:
    """Identity of a reading: (device_id, quantity, phase, ts)."""
    return (rec["device_id"], rec["quantity"], rec.get("phase") or "TOTAL", rec["ts"])


class DuplicateFilter:
    """Remembers the last ``capacity`` reading keys (LRU) and reports exact repeats.

    Bounded memory; a duplicate older than the capacity window passes and must be absorbed downstream by the
    idempotent interval aggregation (same ts replaces, never adds).
    """

    def __init__(self, capacity: int = 1_000_000):
        self.capacity = capacity
        self._seen: OrderedDict[DedupKey, None] = OrderedDict()

    def seen(self, rec: Mapping[str, Any]) -> bool:
        """True when this key was seen before (a duplicate); otherwise remember it and return False."""
        key = dedup_key(rec)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)
