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

Days are UTC days (see :mod:`streams.analytics.baselines`); the look-back and the records come from
:mod:`streams.analytics.baseline_lookback`. The runtime stage (:mod:`streams.analytics.baseline_processor`)
keeps per-prosumer state instead of this in-memory object (evaluation, tests).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from streams.analytics import baseline_lookback as lookback
from streams.analytics.baselines import DAY_MS, RECOMMENDED, SLOT_MS, SLOTS_PER_DAY, BaselineConfig


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
        lookback.merge_reading(slot, rec["device_id"], int(rec.get("version", 1)), float(rec["avg_kw"]))

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

    def _rows(self, prosumer: str, day: int) -> dict[int, np.ndarray]:
        """Daily load rows (kW per slot) of the look-back window ending at UTC day number ``day``."""
        first, rows = lookback.first_lookback_day(day, self.cfg), {}
        for start, devices in self.slots.get(prosumer, {}).items():
            d = start // DAY_MS
            if first <= d <= day:
                row = rows.get(d)
                if row is None:
                    row = rows[d] = np.full(SLOTS_PER_DAY, np.nan)
                row[(start % DAY_MS) // SLOT_MS] = lookback.slot_kw(devices)
        return rows

    def day_ahead(self, prosumer: str, day_start_ms: int) -> list[dict[str, Any]]:
        day = day_start_ms // DAY_MS
        rows, events = self._rows(prosumer, day), self.event_days.get(prosumer, ())
        return lookback.day_ahead(prosumer, rows, events, day, self.cfg, self.now())

    def slot_ahead(self, prosumer: str, slot_start_ms: int) -> dict[str, Any] | None:
        """Adjusted baseline of one slot (version 2); uses only data before ``slot - lead``."""
        rows = self._rows(prosumer, slot_start_ms // DAY_MS)
        events = self.event_days.get(prosumer, ())
        return lookback.slot_ahead(prosumer, rows, events, slot_start_ms, self.cfg, self.now())

    def prosumers(self) -> list[str]:
        return sorted(self.slots)
