"""Per-prosumer state of the baseline stage in a partition's key/value store (JSON and float64 rows, no pickle).

Keys of one prosumer ``<p>`` (all in the partition that owns ``<p>``):

- ``b:<p>``: :class:`ProsumerMeta` as JSON: ``wm`` (the prosumer's event time: latest ``interval_end`` seen, UTC
  epoch ms; baselines up to it were issued), ``days`` (UTC day numbers with stored readings) and ``events``
  (UTC day numbers of its flexibility orders);
- ``b:<p>:r:<day>``: the day's readings, JSON list of 96 slots, each null or ``{device_id: [version, kW]}``;
- ``b:<p>:kw:<day>``: the day's load row, 96 little-endian float64 kW (NaN where unknown), the per-slot sums of
  the readings: what a look-back reads (raw numbers, decoded with ``numpy.frombuffer``, nothing executable).

A record reads and writes only its prosumer's keys: one day of readings per interval, the look-back rows when
a baseline is issued, never other prosumers' state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from edream.runtime.contract import KeyValueState
from streams.analytics.baseline_lookback import SlotReadings, slot_kw
from streams.analytics.baselines import SLOTS_PER_DAY

_ROW = np.dtype("<f8")
_ROW_BYTES = SLOTS_PER_DAY * _ROW.itemsize


@dataclass
class ProsumerMeta:
    """What the stage remembers of one prosumer besides its readings (see the module docstring)."""

    wm: int | None = None
    days: list[int] = field(default_factory=list)
    events: list[int] = field(default_factory=list)

    def add_day(self, day: int) -> bool:
        """Record that ``day`` has stored readings; False when it was known."""
        return _insort_new(self.days, day)

    def add_event_day(self, day: int) -> bool:
        return _insort_new(self.events, day)


def _insort_new(days: list[int], day: int) -> bool:
    i = bisect.bisect_left(days, day)
    if i < len(days) and days[i] == day:
        return False
    days.insert(i, day)
    return True


class ProsumerState:
    """The keys of one prosumer in a partition's store, decoded (and cached for the current record)."""

    def __init__(self, state: KeyValueState, prosumer_id: str):
        self.state, self.prosumer_id = state, prosumer_id
        self._prefix = f"b:{prosumer_id}"
        self._rows: dict[int, np.ndarray | None] = {}

    def meta(self) -> ProsumerMeta:
        raw = self.state.get(self._prefix)
        if raw is None:
            return ProsumerMeta()
        d = orjson.loads(raw)
        return ProsumerMeta(d["wm"], d["days"], d["events"])

    def save_meta(self, meta: ProsumerMeta) -> None:
        self.state.set(self._prefix, orjson.dumps({"wm": meta.wm, "days": meta.days, "events": meta.events}))

    def readings(self, day: int) -> list[SlotReadings | None]:
        """The 96 slots of ``day``: None or ``{device_id: [version, kW]}``."""
        raw = self.state.get(f"{self._prefix}:r:{day}")
        if raw is None:
            return [None] * SLOTS_PER_DAY
        slots: list[Any] = orjson.loads(raw)
        if len(slots) != SLOTS_PER_DAY:
            raise ValueError(f"state {self._prefix}:r:{day} holds {len(slots)} slots, not {SLOTS_PER_DAY}")
        return slots

    def save_readings(self, day: int, slots: list[SlotReadings | None]) -> None:
        """Store the day's readings and its load row (per-slot sums, kW)."""
        row = np.array([np.nan if s is None else slot_kw(s) for s in slots], dtype=_ROW)
        self.state.set(f"{self._prefix}:r:{day}", orjson.dumps(slots))
        self.state.set(f"{self._prefix}:kw:{day}", row.tobytes())
        self._rows[day] = row

    def rows(self, days: Iterable[int]) -> dict[int, np.ndarray]:
        """Load rows (kW per slot) of those of ``days`` that have readings."""
        out = {}
        for day in days:
            if day not in self._rows:
                raw = self.state.get(f"{self._prefix}:kw:{day}")
                if raw is not None and len(raw) != _ROW_BYTES:
                    raise ValueError(f"state {self._prefix}:kw:{day} has {len(raw)} bytes, not {_ROW_BYTES}")
                self._rows[day] = None if raw is None else np.frombuffer(raw, dtype=_ROW)
            row = self._rows[day]
            if row is not None:
                out[day] = row
        return out

    def drop_day(self, day: int) -> None:
        self.state.delete(f"{self._prefix}:r:{day}")
        self.state.delete(f"{self._prefix}:kw:{day}")
        self._rows.pop(day, None)
