"""Baseline service: event days from flex orders, versions, day-ahead and slot-ahead records."""

from __future__ import annotations

import pytest
from fastavro.validation import validate

from edream.avro_schemas import load_schema
from streams.analytics.baseline_service import BaselineService
from streams.analytics.baselines import BaselineConfig

DAY = 86_400_000
SLOT = 900_000
MONDAY = 1_700_438_400_000  # 2023-11-20 00:00 UTC
NOW = MONDAY + 30 * DAY


def iv(day: int, slot: int, kw: float, device: str = "d1", version: int = 1) -> dict:
    start = MONDAY + day * DAY + slot * SLOT
    return {
        "prosumer_id": "p1",
        "device_id": device,
        "interval_start": start,
        "interval_end": start + SLOT,
        "avg_kw": kw,
        "completeness": 1.0,
        "version": version,
    }


def history(svc: BaselineService, days: int) -> None:
    for d in range(days):
        weekend = d % 7 >= 5
        for s in range(96):
            if d == 11:
                svc.observe_interval(iv(d, s, 999.0))  # superseded by the correction below
                svc.observe_interval(iv(d, s, 12.0, version=2))
            else:
                svc.observe_interval(iv(d, s, 100.0 if weekend else d + 1.0))
            svc.observe_interval(iv(d, s, 0.5, device="d2"))  # second meter of the same prosumer


def order(day: int, status: str = "ACTIVE") -> dict:
    return {
        "status": status,
        "allocations": [
            {"prosumer_id": "p1", "slot_start": MONDAY + day * DAY + 70 * SLOT, "kw": 1.0, "baseline_kw": 5.0}
        ],
    }


def test_day_ahead_excludes_event_days_and_weekends():
    svc = BaselineService(
        BaselineConfig("AVERAGE_Y", x=2, y=2, adjust="multiplicative", cap=0.2), now_ms=lambda: NOW
    )
    history(svc, 15)
    svc.observe_order(order(14))  # Monday of week 3 is an event day
    svc.observe_order(order(10, status="CANCELLED"))  # a cancelled order does not exclude its day
    recs = svc.day_ahead("p1", MONDAY + 15 * DAY)  # Tuesday
    assert len(recs) == 96
    # look-back: day 11 (Fri, corrected to 12 kW) and day 10 (Thu, 11 kW), plus 0.5 kW of d2 each
    assert all(r["baseline_kw"] == pytest.approx(12.0) for r in recs)
    assert recs[0]["source_days"] == ["2023-12-01", "2023-11-30"]
    assert recs[0]["version"] == 1 and recs[0]["adjustment_kw"] == 0.0 and recs[0]["computed_at"] == NOW
    assert all(validate(r, load_schema("Baseline")) for r in recs)


def test_slot_ahead_uses_same_day_data_before_the_lead():
    svc = BaselineService(BaselineConfig("AVERAGE_Y", x=2, y=2, adjust="multiplicative", cap=0.2))
    history(svc, 15)
    svc.observe_order(order(14))
    for s in range(36):  # day 15 runs 10 % above the 12 kW baseline until 09:00
        svc.observe_interval(iv(15, s, 12.7))
        svc.observe_interval(iv(15, s, 0.5, device="d2"))
    rec = svc.slot_ahead("p1", MONDAY + 15 * DAY + 40 * SLOT)
    # window for slot 40: slots 24..35 (lead 4, width 12): ratio 13.2 / 12 = 1.1
    assert rec["baseline_kw"] == pytest.approx(13.2)
    assert rec["adjustment_kw"] == pytest.approx(1.2)
    assert rec["version"] == 2 and rec["event_id"] == f"p1/{MONDAY + 15 * DAY + 40 * SLOT}/2"
    assert svc.day_ahead("nobody", MONDAY) == []
