"""HL-UC03 LL-UC03 acceptance: export capacity for slot 13:00-13:30 evaluated at 12:00."""

from datetime import UTC, datetime

import pytest

from streams.vpp.assets import Asset, AssetKind, ExclusionReason
from streams.vpp.export import (
    Decision,
    ExportRequest,
    ResForecast,
    derate_from_rd,
    evaluate_export,
    generator_capacity_kw,
    next_slot_start,
)

T12 = int(datetime(2024, 6, 3, 12, 0, tzinfo=UTC).timestamp() * 1000)
T13 = T12 + 3_600_000
EUR = 1_000_000  # micro-units per euro


def portfolio():
    return [
        Asset("hydro", AssetKind.GENERATOR, p_max_kw=50, current_kw=40),
        Asset(
            "diesel",
            AssetKind.GENERATOR,
            p_max_kw=100,
            is_on=False,
            start_up_time_s=600,
            marginal_cost_micro_per_kwh=250_000,
        ),
        Asset("loads", AssetKind.CURTAILABLE_LOAD, p_max_kw=20, current_kw=20),
    ]


def evaluate(price_eur: float, quantile: float = 0.1):
    req = ExportRequest("vpp1", T13, T12, int(price_eur * EUR), int(0.10 * EUR), offer_quantile=quantile)
    return evaluate_export(req, [ResForecast("pv", 120.0, 90.0)], portfolio(), community_load_p50_kw=90.0)


def test_price_above_threshold_below_diesel_cost():
    r = evaluate(0.18)
    assert r.export_p50_kw == pytest.approx(100.0)  # 120 + 50 + 20 - 90
    assert r.export_p10_kw == pytest.approx(70.0)
    assert r.offered_kw == pytest.approx(70.0)
    assert r.decision == Decision.OFFER
    assert dict(r.excluded) == {"diesel": ExclusionReason.COST_ABOVE_PRICE}
    assert dict(r.setpoints) == {"hydro": 50.0, "loads": 20.0}
    assert r.slot_end_ms - r.slot_start_ms == 30 * 60_000


def test_price_above_diesel_cost():
    r = evaluate(0.30)
    assert (r.export_p50_kw, r.export_p10_kw, r.offered_kw) == pytest.approx((200.0, 170.0, 170.0))
    assert dict(r.setpoints)["diesel"] == 100.0
    assert r.excluded == ()


def test_price_below_threshold_hands_over():
    r = evaluate(0.08)
    assert r.decision == Decision.HANDOVER
    assert r.offered_kw == 0.0


def test_p50_offer_quantile():
    assert evaluate(0.18, quantile=0.5).offered_kw == pytest.approx(100.0)


def test_supply_curve_gives_price_threshold_per_step():
    # firm export 70 kW from the 0.10 threshold on, 170 kW once the price covers the diesel (0.25)
    assert evaluate(0.18).supply_curve == ((100_000, 70.0), (250_000, 170.0))


def test_slow_generator_excluded_and_ramp_limits():
    slow = Asset("gas", AssetKind.GENERATOR, p_max_kw=100, is_on=False, start_up_time_s=7200)
    assert generator_capacity_kw(slow, 3600) == (0.0, ExclusionReason.START_UP_TIME)
    ramping = Asset("chp", AssetKind.GENERATOR, p_max_kw=100, current_kw=10, ramp_kw_per_s=0.01)
    assert generator_capacity_kw(ramping, 3600) == (pytest.approx(46.0), None)
    req = ExportRequest("vpp1", T13, T12, 200_000, 100_000)
    r = evaluate_export(req, [], [slow], community_load_p50_kw=0.0)
    assert dict(r.excluded) == {"gas": ExclusionReason.START_UP_TIME}
    assert r.offered_kw == 0.0


def test_degradation_derates_res_and_load_upper_forecast_firms_offer():
    derate = derate_from_rd(-0.8, 5)
    assert derate == pytest.approx(0.992**5)
    req = ExportRequest("vpp1", T13, T12, 180_000, 100_000)
    r = evaluate_export(req, [ResForecast("pv", 100.0, 100.0, derate)], [], 50.0, community_load_high_kw=60.0)
    assert r.export_p50_kw == pytest.approx(100 * derate - 50)
    assert r.export_p10_kw == pytest.approx(100 * derate - 60)


def test_next_slot_start_is_one_hour_after_current_half_hour():
    assert next_slot_start(T12) == T13
    assert next_slot_start(T12 + 29 * 60_000) == T13
    assert next_slot_start(T12 + 30 * 60_000) == T13 + 30 * 60_000
