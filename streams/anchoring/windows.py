"""Grouping settlement records into anchor windows, by event time.

An anchor window is ``(kind, [start, start + period))`` with ``start`` aligned to ``period_ms`` (UTC epoch ms);
a settlement record belongs to the window containing its ``window_start``. Its id reads
``2026-11-23T10:15Z/15m`` (ISO minute of the start in UTC + period), so ids sort and are human readable.

Within a window, records are de-duplicated by ``settlement_id`` (at-least-once delivery): the highest
``version`` wins; equal versions keep the record with the larger canonical encoding, so the choice does not
depend on arrival order.

A window closes when the event-time watermark of its kind (the largest ``window_end`` seen for that kind)
passes ``end + grace_ms``, or when :meth:`WindowGrouper.flush` is called (clock tick, shutdown). A record for a
window that already closed is *late*: it is reported, never silently merged (the window's root is immutable).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from streams.settlement.canonical import canonical_bytes

MINUTE_MS = 60_000


def period_label(period_ms: int) -> str:
    """``15m``, ``1h``, ``1d`` (largest unit that divides the period), ``900000ms`` otherwise."""
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", MINUTE_MS), ("s", 1000)):
        if period_ms % ms == 0:
            return f"{period_ms // ms}{unit}"
    return f"{period_ms}ms"


@dataclass(frozen=True, order=True)
class WindowKey:
    """One anchor window. ``start_ms``/``end_ms`` are UTC epoch ms, end exclusive."""

    kind: str
    start_ms: int
    end_ms: int

    @property
    def window_id(self) -> str:
        start = datetime.fromtimestamp(self.start_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%MZ")
        return f"{start}/{period_label(self.end_ms - self.start_ms)}"

    @classmethod
    def containing(cls, kind: str, ts_ms: int, period_ms: int) -> WindowKey:
        start = ts_ms - ts_ms % period_ms
        return cls(kind, start, start + period_ms)

    @classmethod
    def parse(cls, kind: str, window_id: str) -> WindowKey:
        """Inverse of :attr:`window_id` (``2026-11-23T10:15Z/15m``)."""
        start_s, _, label = window_id.partition("/")
        start = int(datetime.strptime(start_s, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC).timestamp() * 1000)
        units = {"d": 86_400_000, "h": 3_600_000, "m": MINUTE_MS, "s": 1000}
        if label.endswith("ms"):
            period = int(label[:-2])
        elif label and label[-1] in units:
            period = int(label[:-1]) * units[label[-1]]
        else:
            raise ValueError(f"bad window id {window_id!r}: expected e.g. 2026-11-23T10:15Z/15m")
        return cls(kind, start, start + period)


def _rank(record: dict[str, Any]) -> tuple[int, bytes]:
    return int(record.get("version", 1)), canonical_bytes(record)


def supersedes(record: dict[str, Any], held: dict[str, Any]) -> bool:
    """True if ``record`` replaces ``held`` (same settlement id): higher version, ties by canonical bytes."""
    return _rank(record) > _rank(held)


def dedupe_latest(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per ``settlement_id``: highest version (ties: larger canonical bytes), sorted by id."""
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        sid = r["settlement_id"]
        if sid not in best or _rank(r) > _rank(best[sid]):
            best[sid] = r
    return [best[k] for k in sorted(best)]


@dataclass
class WindowBatch:
    """The records of one anchor window, keyed by settlement id (latest version only)."""

    key: WindowKey
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> bool:
        """Add or supersede; False if an equal-or-newer record with this settlement id is already held."""
        sid = record["settlement_id"]
        held = self.by_id.get(sid)
        if held is not None and _rank(held) >= _rank(record):
            return False
        self.by_id[sid] = record
        return True

    @property
    def records(self) -> list[dict[str, Any]]:
        return [self.by_id[k] for k in sorted(self.by_id)]

    def __len__(self) -> int:
        return len(self.by_id)


class AddResult(StrEnum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    LATE = "late"


class WindowGrouper:
    """Buffers settlement records per (kind, anchor window) and hands out windows once closed."""

    def __init__(self, period_ms: int = 15 * MINUTE_MS, grace_ms: int | None = None):
        if period_ms <= 0:
            raise ValueError("period_ms must be positive")
        self.period_ms = period_ms
        self.grace_ms = period_ms if grace_ms is None else grace_ms
        self._open: dict[WindowKey, WindowBatch] = {}
        self._watermark: dict[str, int] = {}
        self._closed_until: dict[str, int] = {}  # per kind: every window ending at or before this is closed

    def key_for(self, record: dict[str, Any]) -> WindowKey:
        return WindowKey.containing(str(record["kind"]), int(record["window_start"]), self.period_ms)

    def add(self, record: dict[str, Any]) -> AddResult:
        key = self.key_for(record)
        self._watermark[key.kind] = max(self._watermark.get(key.kind, 0), int(record["window_end"]))
        if key.end_ms <= self._closed_until.get(key.kind, -1):
            return AddResult.LATE
        batch = self._open.setdefault(key, WindowBatch(key))
        return AddResult.ADDED if batch.add(record) else AddResult.DUPLICATE

    def watermark(self, kind: str) -> int | None:
        return self._watermark.get(kind)

    def closed(self) -> list[WindowBatch]:
        """Pop the windows whose kind's watermark passed their end + grace, oldest first."""
        ready = [k for k in self._open if self._watermark.get(k.kind, 0) >= k.end_ms + self.grace_ms]
        return self._pop(ready)

    def flush(self, until_ms: int | None = None) -> list[WindowBatch]:
        """Pop all open windows (or those ending at or before ``until_ms``), oldest first."""
        ready = [k for k in self._open if until_ms is None or k.end_ms <= until_ms]
        return self._pop(ready)

    def _pop(self, keys: list[WindowKey]) -> list[WindowBatch]:
        out = []
        for k in sorted(keys, key=lambda k: (k.start_ms, k.kind)):
            out.append(self._open.pop(k))
            self._closed_until[k.kind] = max(self._closed_until.get(k.kind, -1), k.end_ms)
        return out

    @property
    def open_windows(self) -> list[WindowKey]:
        return sorted(self._open)
