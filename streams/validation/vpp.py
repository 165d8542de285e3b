"""The ``VppCapabilityRequest`` contract (avro/VppCapabilityRequest.avsc) against the wall clock.

Ids and text of bounded length, finite non-negative service parameters, a window that ends after it starts,
starts within the horizon and spans at most the horizon, ``requested_at`` not ahead of the wall clock by more
than the clock skew, per-slot demand finite and at most ``max_flex_kw``. Past windows are left to the
evaluation (a request answers a question; it moves no clock). ``VppAsset`` records are validated by
:class:`streams.vpp.registry.AssetSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

INT64_MAX = 2**63 - 1


def check_capability_request(
    rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None
) -> list[FieldError]:
    """Bounds of one decoded request; ``now_ms`` = wall clock (UTC epoch ms)."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("request_id", rec.get("request_id"))
    c.identifier("vpp_id", rec.get("vpp_id"))
    c.identifier("service", rec.get("service"))
    for name in ("max_response_s", "min_duration_min"):
        c.number(name, rec.get(name), 0.0, 1e7)
    c.number("min_size_kw", rec.get("min_size_kw", 0.0), 0.0, lim.max_flex_kw, unit="kW")
    c.number("slot_minutes", rec.get("slot_minutes", 15), 1, 1440, integer=True)
    if rec.get("price_micro_per_kw_h") is not None:
        c.number("price_micro_per_kw_h", rec["price_micro_per_kw_h"], 0, INT64_MAX, integer=True)
    requested = rec.get("requested_at")
    if (
        c.number("requested_at", requested, 0, INT64_MAX, integer=True)
        and requested > now_ms + lim.max_future_ms
    ):
        c.fail(
            "requested_at", "ts_in_future", f"{requested} is {requested - now_ms} ms ahead of now ({now_ms})"
        )
    start, end = rec.get("window_start"), rec.get("window_end")
    ok = c.number("window_start", start, 0, INT64_MAX, integer=True)
    ok = c.number("window_end", end, 0, INT64_MAX, integer=True) and ok
    if ok:
        if end <= start:
            c.fail("window_end", "value_out_of_range", f"{end} is not after window_start {start}")
        elif end - start > lim.horizon_ms:
            c.fail("window_end", "beyond_horizon", f"window of {end - start} ms is longer than the horizon")
        if start > now_ms + lim.horizon_ms:
            c.fail(
                "window_start",
                "beyond_horizon",
                f"{start} is after now + horizon ({now_ms + lim.horizon_ms})",
            )
    demand = rec.get("demand_kw") or []
    if len(demand) > max(1, lim.horizon_ms // 60_000):
        c.fail("demand_kw", "too_many", f"{len(demand)} values")
    else:
        for i, kw in enumerate(demand):
            c.number(f"demand_kw[{i}]", kw, 0.0, lim.max_flex_kw, unit="kW")
    return c.errors
