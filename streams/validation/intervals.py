"""The ``IntervalEnergy`` contract (avro/IntervalEnergy.avsc) as the stages that consume intervals check it.

Bounds only: ids, a 15-minute interval aligned on the slot grid, ``interval_end`` (the event time that moves a
consumer's watermark) within the wall-clock window of :class:`~streams.validation.limits.Limits`, finite and
bounded kW, completeness and version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.analytics.baselines import SLOT_MS
from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

#: Largest interval version (Avro ``int``).
MAX_VERSION = 2**31 - 1


def check_interval(rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None) -> list[FieldError]:
    """Every problem of one decoded IntervalEnergy against the wall clock ``now_ms`` (UTC epoch ms; empty =
    valid): ``interval_end`` not ahead of now by more than the clock skew nor older than ``max_past_ms``;
    ``interval_start`` on the 15-minute grid and ``interval_end = interval_start + 15 min``; ``avg_kw`` (kW)
    finite and within ``max_reading_kw``; ``completeness`` in [0, 1]; ``version`` >= 1."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("prosumer_id", rec.get("prosumer_id"))
    c.identifier("device_id", rec.get("device_id"))
    start, end = rec.get("interval_start"), rec.get("interval_end")
    if c.event_time("interval_end", end, now_ms, lim.max_past_ms, lim.max_future_ms):
        if not isinstance(start, int) or isinstance(start, bool):
            c.fail("interval_start", "bad_type", f"must be an int (UTC epoch ms), got {type(start).__name__}")
        elif start % SLOT_MS or end - start != SLOT_MS:
            c.fail(
                "interval_start",
                "not_on_grid",
                f"[{start}, {end}) is not one 15-minute interval aligned on the UTC slot grid",
            )
    c.number("avg_kw", rec.get("avg_kw"), -lim.max_reading_kw, lim.max_reading_kw, unit="kW")
    c.number("completeness", rec.get("completeness"), 0.0, 1.0)
    c.number("version", rec.get("version"), 1, MAX_VERSION, integer=True)
    return c.errors
