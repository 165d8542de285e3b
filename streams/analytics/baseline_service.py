"""Rolling customer baselines for many prosumers from the IntervalEnergy and FlexOrder streams.

:class:`BaselineService` is pure and engine-independent:

* ``observe_interval(rec)`` stores the slot's mean net power (kW, ``avg_kw``; the latest version of each device,
  summed per prosumer);
* ``observe_order(order)`` marks the UTC days of every allocation of a flexibility order (avro/FlexOrder.avsc,
  not CANCELLED) as event days of that prosumer: they never enter a look-back;
* ``day_ahead(prosumer, day_start_ms)`` returns the 96 Baseline records (avro/Baseline.avsc) of a day, version 1,
  computed before the day starts (no same-day adjustment);
* ``slot_ahead(prosumer, slot_start_ms)`` returns the adjusted baseline of one slot, version 2, computable
  ``cfg.adjust_lead_slots`` slots before it starts (the rolling same-day adjustment only uses data before that).

Days are UTC days (see :mod:`streams.analytics.baselines`). The service pickles for restarts.
"""

from __future__ import annotations

import pickle
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from streams.analytics.baselines import (
    DAY_MS,
    SLOT_MS,
    SLOTS_PER_DAY,
    BaselineConfig,
    DayBaseline,
    baseline_records,
    day_baseline,
    day_kinds,
)

#: Default from the simbench evaluation: 10-of-10 average with a capped multiplicative same-day adjustment.
RECOMMENDED = BaselineConfig("AVERAGE_Y", x=10, y=10, adjust="multiplicative", cap=0.2)


def _date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


class BaselineService:
    def __init__(self, cfg: BaselineConfig = RECOMMENDED, now_ms: Callable[[], int] | None = None):
        self.cfg = cfg
        self._now = now_ms
        # prosumer -> slot start -> device -> (version, kW)
        self.slots: dict[str, dict[int, dict[str, tuple[int, float]]]] = defaultdict(dict)
        self.event_days: dict[str, set[int]] = defaultdict(set)  # UTC day numbers (epoch ms // DAY_MS)

    def now(self) -> int:
        return self._now() if self._now else int(time.time() * 1000)

    def observe_interval(self, rec: Mapping[str, Any]) -> None:
        if rec.get("completeness", 1.0) <= 0:
            return
        slot = self.slots[rec["prosumer_id"]].setdefault(int(rec["interval_start"]), {})
        version = int(rec.get("version", 1))
        old = slot.get(rec["device_id"])
        if old is None or old[0] <= version:
            slot[rec["device_id"]] = (version, float(rec["avg_kw"]))

    def observe_order(self, order: Mapping[str, Any]) -> None:
        if order.get("status") == "CANCELLED":
            return
        for a in order["allocations"]:
            self.event_days[a["prosumer_id"]].add(int(a["slot_start"]) // DAY_MS)

    def prune(self, before_ms: int) -> None:
        """Forget slots older than ``before_ms`` (keep at least ``max_lookback_days + 1`` days)."""
        for slots in self.slots.values():
            for s in [s for s in slots if s < before_ms]:
                del slots[s]

    def _grid(self, prosumer: str, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(load[days, 96], kinds, excluded, index of ``day``) for the look-back window ending at ``day``."""
        first = day - self.cfg.max_lookback_days - 1
        n = day - first + 1
        load = np.full((n, SLOTS_PER_DAY), np.nan)
        for start, devices in self.slots.get(prosumer, {}).items():
            d = start // DAY_MS - first
            if 0 <= d < n:
                load[d, (start % DAY_MS) // SLOT_MS] = sum(kw for _, kw in devices.values())
        days = np.arange(first, day + 1)
        excluded = np.isin(days, list(self.event_days.get(prosumer, ())))
        return load, day_kinds(days * DAY_MS), excluded, n - 1

    def _baseline(self, prosumer: str, day: int, same_day: bool) -> DayBaseline | None:
        load, kinds, excluded, d = self._grid(prosumer, day)
        return day_baseline(load, d, kinds, excluded, self.cfg, same_day=same_day)

    def _records(self, prosumer: str, day: int, bl: DayBaseline, version: int) -> list[dict[str, Any]]:
        first = day - self.cfg.max_lookback_days - 1
        dates = [_date(first + i) for i in range(day - first + 1)]
        return baseline_records(prosumer, day * DAY_MS, dates, bl, self.cfg, self.now(), version)

    def day_ahead(self, prosumer: str, day_start_ms: int) -> list[dict[str, Any]]:
        day = day_start_ms // DAY_MS
        bl = self._baseline(prosumer, day, same_day=False)
        if bl is None:
            return []
        unadjusted = DayBaseline(bl.kw, np.zeros(SLOTS_PER_DAY), bl.source_days)
        return self._records(prosumer, day, unadjusted, version=1)

    def slot_ahead(self, prosumer: str, slot_start_ms: int) -> dict[str, Any] | None:
        """Adjusted baseline of one slot (version 2); uses only data before ``slot - lead``."""
        day = slot_start_ms // DAY_MS
        bl = self._baseline(prosumer, day, same_day=True)
        if bl is None:
            return None
        slot = (slot_start_ms % DAY_MS) // SLOT_MS
        recs = self._records(prosumer, day, bl, version=2)
        return next((r for r in recs if r["isp_start"] == day * DAY_MS + slot * SLOT_MS), None)

    def prosumers(self) -> list[str]:
        return sorted(self.slots)

    def snapshot(self) -> bytes:
        state = {k: v for k, v in self.__dict__.items() if k != "_now"}
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes, now_ms: Callable[[], int] | None = None) -> BaselineService:
        svc = cls.__new__(cls)
        svc.__dict__.update(pickle.loads(blob))
        svc._now = now_ms
        return svc
