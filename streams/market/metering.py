"""Metered energy for settlement from 15-minute ``IntervalEnergy`` events (avro/IntervalEnergy.avsc).

An interval settles the market session of the slot that contains its start (:func:`slot_interval_starts` lists the
15-min starts of a slot). Only the fields settlement needs are kept (:class:`MeteredInterval`), after the bounds
checks of :func:`check_interval`: nothing of an interval moves a session's clock before it passed them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.market.settlement import Metered
from streams.validation.fields import Checker, InvalidRecord
from streams.validation.limits import Limits, current_limits

INTERVAL_MS = 15 * 60_000
#: largest energy of one 15-min interval of one meter we accept (Wh): 100 MW for 15 min
MAX_INTERVAL_WH = 25_000_000.0


@dataclass(frozen=True, slots=True)
class MeteredInterval:
    """One meter's 15-min interval: ``interval_start`` (UTC epoch ms, on the 15-min grid), energies in Wh (>= 0),
    ``version`` (a correction of late data has a higher one)."""

    device_id: str
    interval_start: int
    import_wh: float
    export_wh: float
    version: int = 1


def check_interval(
    rec: dict[str, Any], arrival_ms: int, now_ms: int, limits: Limits | None = None
) -> MeteredInterval:
    """The interval of an ``IntervalEnergy`` record that arrived at ``arrival_ms`` (broker time, UTC epoch ms) with
    the wall clock at ``now_ms``; raises :class:`InvalidRecord` (dead-lettered) naming every bad field."""
    lim = limits or current_limits()
    c = Checker()
    c.event_time("arrival_time", arrival_ms, now_ms, lim.max_past_ms, lim.max_future_ms)
    c.identifier("device_id", rec.get("device_id"))
    start = rec.get("interval_start")
    if c.number("interval_start", start, 0, 2**63 - 1, integer=True) and start % INTERVAL_MS:
        c.fail("interval_start", "off_grid", f"{start} is not on the 15-min grid")
    for name in ("import_wh", "export_wh"):
        c.number(name, rec.get(name), 0.0, MAX_INTERVAL_WH, unit="Wh")
    c.number("version", rec.get("version", 1), 1, 2**31 - 1, integer=True)
    if c.errors:
        raise InvalidRecord("IntervalEnergy", c.errors)
    return MeteredInterval(
        rec["device_id"], start, float(rec["import_wh"]), float(rec["export_wh"]), rec.get("version", 1)
    )


def slot_interval_starts(slot_start: int, slot_ms: int) -> range:
    """The 15-min interval starts (UTC epoch ms) of a slot."""
    return range(slot_start, slot_start + slot_ms, INTERVAL_MS)


def metered_of(intervals: list[MeteredInterval]) -> Metered:
    """Import/export summed over the intervals, rounded half-to-even to whole Wh."""
    return Metered(
        import_wh=round(sum(i.import_wh for i in intervals)),
        export_wh=round(sum(i.export_wh for i in intervals)),
    )
