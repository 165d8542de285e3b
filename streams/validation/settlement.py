"""The ``Settlement`` contract (avro/Settlement.avsc) against the wall clock, checked before a record joins an
anchor window (a window's due time is derived from ``window_start``, so an unchecked time would schedule or
re-open windows).

Ids of bounded length, ``window_start`` within ``[now - max_past, now + max_future]`` (a settlement is computed
after its window, so it cannot lie in the future beyond the clock skew), ``window_end`` after ``window_start``
and at most the horizon later, ``computed_at`` not ahead of the wall clock, ``version`` >= 1, money and energy as
int64, ``details`` at most :data:`MAX_DETAILS_CHARS` characters (the sink's limit for that column).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.validation.fields import MAX_EVENT_ID_LENGTH, Checker, FieldError
from streams.validation.limits import Limits, current_limits

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
#: longest ``details`` JSON (characters): the ``string_limits`` of the settlement sinks in topology.yaml
MAX_DETAILS_CHARS = 1_048_576


def check_settlement(rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None) -> list[FieldError]:
    """Bounds of one decoded settlement; ``now_ms`` = wall clock (UTC epoch ms)."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("event_id", rec.get("event_id"), max_len=MAX_EVENT_ID_LENGTH)
    c.identifier("settlement_id", rec.get("settlement_id"), max_len=MAX_EVENT_ID_LENGTH)
    c.one_of("kind", rec.get("kind"), ("FLEX", "MARKET"))
    c.identifier("window_id", rec.get("window_id"), max_len=MAX_EVENT_ID_LENGTH)
    c.identifier("party_id", rec.get("party_id"))
    c.identifier("reference_id", rec.get("reference_id"), max_len=MAX_EVENT_ID_LENGTH)
    c.number("quantity_wh", rec.get("quantity_wh"), -INT64_MAX, INT64_MAX, integer=True, unit="Wh")
    c.number("amount_micro", rec.get("amount_micro"), -INT64_MAX, INT64_MAX, integer=True)
    c.text("currency", rec.get("currency", "EUR"))
    c.text("details", rec.get("details", ""), max_len=MAX_DETAILS_CHARS)
    c.number("version", rec.get("version", 1), 1, INT32_MAX, integer=True)
    start, end = rec.get("window_start"), rec.get("window_end")
    if c.event_time("window_start", start, now_ms, lim.max_past_ms, lim.max_future_ms) and c.number(
        "window_end", end, 0, INT64_MAX, integer=True
    ):
        if end <= start:
            c.fail("window_end", "value_out_of_range", f"{end} is not after window_start {start}")
        elif end - start > lim.horizon_ms:
            c.fail("window_end", "beyond_horizon", f"window of {end - start} ms is longer than the horizon")
    computed = rec.get("computed_at")
    if (
        c.number("computed_at", computed, 0, INT64_MAX, integer=True)
        and computed > now_ms + lim.max_future_ms
    ):
        c.fail("computed_at", "ts_in_future", f"{computed} is {computed - now_ms} ms ahead of now ({now_ms})")
    return c.errors
