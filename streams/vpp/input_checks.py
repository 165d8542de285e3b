"""Bounds of the outlook records the vpp stage keeps (Forecast, Baseline, PvDegradation) against the wall clock.

Nothing is stored or forwarded before these checks pass: finite numbers, ids of bounded length, times that are
integers (UTC epoch ms) and not ahead of the wall clock by more than the clock skew (``issued_at``,
``computed_at``) or the horizon (a baseline slot, which is published ahead of the slot). ``VppAsset`` records are
validated by :class:`streams.vpp.registry.AssetSpec`, capability requests by
:func:`streams.validation.vpp.check_capability_request`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.validation.fields import Checker, FieldError
from streams.validation.limits import Limits, current_limits

INT64_MAX = 2**63 - 1
DAY_MS = 86_400_000
#: Wh of one forecast point, either sign (a portfolio of 10 GW over a day is 2.4e11 Wh)
MAX_POINT_WH = 1e12
MAX_ASSET_ID = 128


def check_forecast(rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None) -> list[FieldError]:
    """A Forecast record (avro/Forecast.avsc): ids, step 1..1440 min, ``issued_at`` not in the future, at most
    one point per minute of the horizon, finite point values (Wh) and bounds."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("entity_id", rec.get("entity_id"))
    c.identifier("property", rec.get("property"))
    c.identifier("prediction_granularity", rec.get("prediction_granularity"))
    c.number("profile_granularity_minutes", rec.get("profile_granularity_minutes"), 1, 1440, integer=True)
    issued = rec.get("issued_at")
    if c.number("issued_at", issued, 0, INT64_MAX, integer=True) and issued > now_ms + lim.max_future_ms:
        c.fail("issued_at", "ts_in_future", f"{issued} is {issued - now_ms} ms ahead of now ({now_ms})")
    points = rec.get("points")
    if not isinstance(points, list):
        c.fail("points", "bad_type", "must be a list")
    elif len(points) > max(1, lim.horizon_ms // 60_000):
        c.fail("points", "too_many", f"{len(points)} points")
    else:
        for i, p in enumerate(points):
            c.number(f"points[{i}].ts", p.get("ts"), 0, INT64_MAX, integer=True)
            c.number(f"points[{i}].value", p.get("value"), -MAX_POINT_WH, MAX_POINT_WH, unit="Wh")
            for bound in ("lower", "upper"):
                if p.get(bound) is not None:
                    c.number(f"points[{i}].{bound}", p[bound], -MAX_POINT_WH, MAX_POINT_WH, unit="Wh")
            if c.errors:
                break
    return c.errors


def check_baseline(rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None) -> list[FieldError]:
    """A Baseline record (avro/Baseline.avsc): a slot of at most a day starting within the horizon, a finite
    baseline within the reading bounds (kW), a non-negative version."""
    lim = limits or current_limits()
    c = Checker()
    c.identifier("prosumer_id", rec.get("prosumer_id"))
    start, end = rec.get("isp_start"), rec.get("isp_end")
    ok = c.number("isp_start", start, 0, INT64_MAX, integer=True)
    ok = c.number("isp_end", end, 0, INT64_MAX, integer=True) and ok
    if ok:
        if not 0 < end - start <= DAY_MS:
            c.fail("isp_end", "value_out_of_range", f"slot {start}..{end} is empty or longer than a day")
        if start > now_ms + lim.horizon_ms:
            c.fail(
                "isp_start", "beyond_horizon", f"{start} is after now + horizon ({now_ms + lim.horizon_ms})"
            )
    c.number("baseline_kw", rec.get("baseline_kw"), -lim.max_reading_kw, lim.max_reading_kw, unit="kW")
    c.number("version", rec.get("version", 1), 0, 2**31 - 1, integer=True)
    return c.errors


def check_degradation(rec: Mapping[str, Any], now_ms: int, limits: Limits | None = None) -> list[FieldError]:
    """A PvDegradation record: its asset id, ``computed_at`` not in the future, a finite Rd (%/year) and
    ``data_from`` (UTC epoch ms)."""
    lim = limits or current_limits()
    c = Checker()
    aid = rec.get("asset_id")
    if c.text("asset_id", aid, max_len=MAX_ASSET_ID) and not aid:
        c.fail("asset_id", "missing_field", "is missing or empty")
    computed = rec.get("computed_at")
    if (
        c.number("computed_at", computed, 0, INT64_MAX, integer=True)
        and computed > now_ms + lim.max_future_ms
    ):
        c.fail("computed_at", "ts_in_future", f"{computed} is {computed - now_ms} ms ahead of now ({now_ms})")
    c.number("rd_pct_per_year", rec.get("rd_pct_per_year"), -100.0, 100.0, unit="%/year")
    c.number("data_from", rec.get("data_from"), 0, INT64_MAX, integer=True)
    return c.errors
