"""Metered energy per participant and slot from 15-minute ``IntervalEnergy`` events (analytics issue)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.market.participants import Participant
from streams.market.settlement import Metered

INTERVAL_MS = 15 * 60_000


class MeterLedger:
    """Latest version of every (device, interval) seen; sums a participant's meters over a slot in whole Wh."""

    def __init__(self) -> None:
        self._intervals: dict[tuple[str, int], dict[str, Any]] = {}

    def add(self, interval: dict[str, Any]) -> bool:
        """Apply one IntervalEnergy record; a lower ``version`` than the stored one is ignored. True if applied."""
        key = (interval["device_id"], interval["interval_start"])
        old = self._intervals.get(key)
        if old is not None and old.get("version", 1) > interval.get("version", 1):
            return False
        self._intervals[key] = interval
        return True

    def _slot_intervals(self, p: Participant, slot_start: int, slot_ms: int) -> Iterable[dict[str, Any]]:
        for device in p.meters:
            for start in range(slot_start, slot_start + slot_ms, INTERVAL_MS):
                rec = self._intervals.get((device, start))
                if rec is not None:
                    yield rec

    def is_complete(self, p: Participant, slot_start: int, slot_ms: int) -> bool:
        """Every 15-min interval of every meter of ``p`` in the slot has arrived."""
        expected = len(p.meters) * (slot_ms // INTERVAL_MS)
        return sum(1 for _ in self._slot_intervals(p, slot_start, slot_ms)) == expected

    def metered(self, p: Participant, slot_start: int, slot_ms: int) -> Metered:
        """Import/export over the slot summed over ``p``'s meters, rounded half-to-even to whole Wh."""
        recs = list(self._slot_intervals(p, slot_start, slot_ms))
        return Metered(
            import_wh=round(sum(r["import_wh"] for r in recs)),
            export_wh=round(sum(r["export_wh"] for r in recs)),
        )
