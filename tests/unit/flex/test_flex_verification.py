from __future__ import annotations

import pytest

from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.verification import VerificationEngine, classify

T = 1_800_000_000_000 // 900_000 * 900_000
SLOT = 900_000


def order(direction=Direction.REDUCE, kw=2.0, baseline=5.0, slots=1, revision=1) -> FlexOrder:
    allocs = tuple(OrderAllocation("p", T + k * SLOT, kw, baseline) for k in range(slots))
    return FlexOrder("o1", "off", "req", revision, direction, "ACTIVE", allocs, 15, T - 1)


def feed(engine, values, start=T, step=5_000, prosumer="p"):
    out = []
    for k, kw in enumerate(values, start=1):
        out += engine.on_reading(prosumer, start + k * step, kw)
    return out


def test_classify_band_edges():
    assert classify(2.0, 1.8, 0.1) == "WITHIN"
    assert classify(2.0, 2.2, 0.1) == "WITHIN"
    assert classify(2.0, 1.79, 0.1) == "SHORTFALL"
    assert classify(2.0, 2.21, 0.1) == "OVERDELIVERY"


def test_compliant_prosumer_only_final_within():
    e = VerificationEngine(allowed_lateness_ms=0)
    e.apply_order(order())
    evs = feed(e, [3.0] * 180)  # baseline 5 - actual 3 = 2 kW delivered
    assert [(d.kind, d.verdict) for d in evs] == [("FINAL", "WITHIN")]
    assert evs[0].delivered_kw == pytest.approx(2.0) and evs[0].readings == 180 and evs[0].ts == T + SLOT


def test_projected_deviation_within_two_readings_of_evidence():
    e = VerificationEngine()
    e.apply_order(order())
    # complies for 60 readings (5 min), then back to baseline: projection (2*300 + 0*600)/900 = 0.67 < 1.8
    evs = feed(e, [3.0] * 60 + [5.0] * 10)
    [d] = evs
    assert d.kind == "PROJECTED" and d.verdict == "SHORTFALL"
    assert d.ts == T + 62 * 5_000  # evident at reading 61, confirmed at 62
    assert d.delivered_kw == pytest.approx((2.0 * 300 + 0.0 * 10) / 900, abs=1e-6)


def test_single_noisy_reading_does_not_trigger():
    e = VerificationEngine()
    e.apply_order(order())
    assert feed(e, [3.0] * 100 + [5.0] + [3.0] * 20) == []


def test_recovery_emits_within_again():
    e = VerificationEngine()
    e.apply_order(order())
    evs = feed(e, [3.0] * 10 + [5.0] * 5 + [2.9] * 10)
    assert [d.verdict for d in evs] == ["SHORTFALL", "WITHIN"]


def test_increase_direction_and_overdelivery():
    e = VerificationEngine(allowed_lateness_ms=0)
    e.apply_order(order(direction=Direction.INCREASE, kw=2.0, baseline=1.0))
    evs = feed(e, [3.0] * 30 + [9.0] * 150)  # +2 kW ok, then +8 kW: overdelivery
    assert [(d.kind, d.verdict) for d in evs] == [("PROJECTED", "OVERDELIVERY"), ("FINAL", "OVERDELIVERY")]
    assert evs[-1].delivered_kw == pytest.approx((2 * 150 + 8 * 750) / 900)


def test_duplicates_and_out_of_order_ignored_and_gaps_held():
    e = VerificationEngine(allowed_lateness_ms=0)
    e.apply_order(order())
    e.on_reading("p", T + 450_000, 3.0)  # one reading at mid-slot covers (start, +450 s]
    e.on_reading("p", T + 450_000, 99.0)  # duplicate: ignored
    e.on_reading("p", T + 300_000, 99.0)  # out of order: ignored
    [final] = e.advance_to(T + SLOT)
    assert final.delivered_kw == pytest.approx(2.0) and final.readings == 1  # held to slot end


def test_no_readings_counts_as_nothing_delivered():
    e = VerificationEngine()
    e.apply_order(order())
    [final] = e.advance_to(T + SLOT)
    assert (final.verdict, final.delivered_kw, final.readings) == ("SHORTFALL", 0.0, 0)


def test_event_time_watermark_with_lateness():
    e = VerificationEngine(allowed_lateness_ms=10_000)
    e.apply_order(order(slots=2))
    feed(e, [3.0] * 180)
    assert e.on_reading("p", T + SLOT + 5_000, 3.0) == []  # watermark T+SLOT-5s: slot 0 still open
    e.on_reading("other", T + SLOT + 5_000, 0.0)
    evs = e.on_reading("p", T + SLOT + 10_000, 3.0)
    assert [(d.kind, d.slot_start) for d in evs] == [("FINAL", T)]
    assert e.on_reading("p", T + SLOT, 50.0) == []  # late reading for a closed slot changes nothing


def test_amendment_retargets_and_drops_unstarted():
    e = VerificationEngine()
    e.apply_order(order(slots=2))
    feed(e, [3.0] * 10)
    amended = FlexOrder(
        "o1",
        "off",
        "req",
        2,
        Direction.REDUCE,
        "AMENDED",
        (OrderAllocation("p", T, 1.0, 5.0),),
        15,
        T + 50_000,
    )
    e.apply_order(amended, now=T + 50_000)
    rows = e.delivery("o1")
    assert [(r["slot_start"], r["target_kw"]) for r in rows] == [(T, 1.0)]
