"""The ``IntervalEnergy`` contract (avro/IntervalEnergy.avsc), checked by every stage that consumes intervals
(forecasts, baselines, grid) before an interval reaches its state: one place for the contract.

Bounds only: ids of the right shape; the interval exactly one step long (default 15 min) and aligned to the step
grid (UTC epoch ms), its end (the event time that moves a consumer's watermark) within
``[now - max_past_ms, now + max_future_ms]`` of the wall clock; energies (Wh) finite, not negative and at most what
``max_reading_kw`` delivers in one step; ``avg_kw`` finite and within ``max_reading_kw``; completeness in [0, 1];
``version`` a positive Avro int. A forecaster fed an unaligned or overlong interval would shift its whole history,
and one interval far in the future would move a prosumer's event-time watermark past every later interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.validation.fields import MAX_EVENT_ID_LENGTH, Checker, FieldError
from streams.validation.limits import Limits, current_limits

STEP_MS = 900_000
INT32_MAX = 2**31 - 1


def check_interval(
    rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None, step_ms: int = STEP_MS
) -> list[FieldError]:
    """Every problem of one decoded IntervalEnergy record (empty = valid); ``now_ms``: the wall clock."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("event_id", rec.get("event_id"), max_len=MAX_EVENT_ID_LENGTH)
    c.identifier("prosumer_id", rec.get("prosumer_id"))
    c.identifier("device_id", rec.get("device_id"))
    start, end = rec.get("interval_start"), rec.get("interval_end")
    if c.event_time("interval_end", end, now_ms, lim.max_past_ms, lim.max_future_ms) and c.number(
        "interval_start", start, 0, end, integer=True
    ):
        if start % step_ms:
            c.fail("interval_start", "not_aligned", f"{start} is not on the {step_ms} ms grid")
        if end - start != step_ms:
            c.fail("interval_end", "bad_length", f"interval is {end - start} ms long, not {step_ms} ms")
    max_wh = lim.max_reading_kw * step_ms / 3_600_000 * 1000
    c.number("import_wh", rec.get("import_wh"), 0.0, max_wh, unit="Wh")
    c.number("export_wh", rec.get("export_wh"), 0.0, max_wh, unit="Wh")
    c.number("avg_kw", rec.get("avg_kw"), -lim.max_reading_kw, lim.max_reading_kw, unit="kW")
    c.number("completeness", rec.get("completeness"), 0.0, 1.0)
    c.number("version", rec.get("version"), 1, INT32_MAX, integer=True)
    return c.errors
