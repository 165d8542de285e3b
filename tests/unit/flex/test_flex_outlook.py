"""OutlookBook: contract baseline method picks the source, fallbacks, forecast sigma and PV share, pruning."""

from __future__ import annotations

import math

import pytest

from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, PvSystem, Registry
from streams.flex.evaluation import evaluate
from streams.flex.outlook import Z80, OutlookBook, OutlookConfig

T0 = 1_795_428_000_000  # 2026-11-23T10:00Z, a 15-minute boundary
ISP = 900_000


def book(method: str = "X_OF_Y", kwp: float = 0.0) -> OutlookBook:
    reg = Registry()
    assets = (CurtailableLoad("l", 3.0),) + ((PvSystem("pv", kwp),) if kwp else ())
    reg.upsert(ProsumerRecord("p1", "a", ContractTerms("agg-1", baseline_method=method), assets=assets))
    return OutlookBook(reg, OutlookConfig(metered_window_ms=600_000))


def baseline(kw: float, start: int = T0, version: int = 1) -> dict:
    return {
        "prosumer_id": "p1",
        "isp_start": start,
        "isp_end": start + ISP,
        "baseline_kw": kw,
        "version": version,
    }


def forecast(
    prop: str, wh: float, issued: int, half_width: float | None = None, start: int = T0, minutes: int = 15
) -> dict:
    lo, hi = (None, None) if half_width is None else (wh - half_width, wh + half_width)
    return {
        "entity_id": "p1",
        "entity_kind": "PROSUMER",
        "property": prop,
        "profile_granularity_minutes": minutes,
        "issued_at": issued,
        "points": [{"ts": start, "value": wh, "lower": lo, "upper": hi}],
    }


def test_nothing_known_offers_nothing():
    b = book()
    o = b("p1", T0)
    assert o.source == "NONE" and not o.known
    assert evaluate(b.registry.get("p1"), T0, 15, o).down_kw == 0.0


def test_baseline_topic_wins_for_x_of_y_with_latest_version_and_any_slot_inside_the_isp():
    b = book()
    b.on_baseline(baseline(4.0, version=2))
    b.on_baseline(baseline(9.0, version=1))  # an older version arriving late does not win
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 2000.0, T0 - ISP))
    o = b("p1", T0 + 5 * 60_000)  # a 1-minute slot inside the ISP
    assert (o.source, o.baseline_kw) == ("BASELINE", 4.0)
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 2000.0, T0 - ISP, start=T0 + ISP))
    nxt = b("p1", T0 + ISP)  # next ISP: no baseline -> forecast (2000 Wh in 15 min = 8 kW)
    assert (nxt.source, nxt.baseline_kw) == ("FORECAST", 8.0)


def test_forecast_method_uses_net_forecast_with_sigma_from_the_80pct_interval():
    b = book("FORECAST", kwp=4.0)
    b.on_baseline(baseline(4.0))
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 1500.0, T0 - 2 * ISP, half_width=100.0))
    b.on_forecast(
        forecast("ENERGY_CONSUMPTION", 1000.0, T0 - ISP, half_width=Z80 * 100.0)
    )  # newer issue wins
    b.on_forecast(forecast("ENERGY_PRODUCTION", 500.0, T0 - ISP, half_width=Z80 * 100.0))
    o = b("p1", T0)
    assert o.source == "FORECAST"
    assert o.baseline_kw == pytest.approx(4.0 - 2.0)  # 1000 Wh - 500 Wh per 15 min = 2 kW net
    assert o.sigma_kw == pytest.approx(math.hypot(100.0, 100.0) * 4 / 1000)
    assert o.pv_kw_per_kwp == pytest.approx(2.0 / 4.0)  # forecast export 2 kW over 4 kWp


def test_forecast_granularities_mix_each_point_converted_over_its_own_step():
    """Day-ahead (60-min) and intra-day (30-min) forecasts of one prosumer: per slot the latest issued point holding
    it, its Wh over its own step (a single step per series read 30-min points as 60-min ones: half the power)."""
    b = book("FORECAST")
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 4000.0, T0 - 8 * ISP, minutes=60))  # 4 kW for 10:00-11:00
    b.on_forecast(
        forecast("ENERGY_CONSUMPTION", 3000.0, T0 - ISP, start=T0 + 2 * ISP, minutes=30)
    )  # 6 kW 10:30-11:00
    assert b("p1", T0 + ISP).baseline_kw == pytest.approx(4.0)  # 10:15: only the day-ahead hour holds it
    assert b("p1", T0 + 3 * ISP).baseline_kw == pytest.approx(6.0)  # 10:45: the newer intra-day point
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 5000.0, T0 - 8 * ISP + 1, start=T0 + 4 * ISP, minutes=60))
    assert b("p1", T0 + 5 * ISP).baseline_kw == pytest.approx(5.0)  # 11:15: the next day-ahead hour


def test_metered_before_is_the_mean_of_the_window_before_the_latest_reading():
    b = book("METERED_BEFORE")
    b.on_baseline(baseline(9.0))
    for k in range(0, 20):  # 20 minutes of readings, one a minute: 1 kW then 3 kW for the last 10
        b.on_reading("p1", T0 + k * 60_000, 1.0 if k < 10 else 3.0)
    o = b("p1", T0 + 30 * 60_000)
    assert (o.source, o.baseline_kw) == ("METERED", pytest.approx(3.0))
    assert o.sigma_kw == pytest.approx(0.2 * 3.0)  # no forecast interval: default fraction


def test_portfolio_forecasts_and_other_properties_are_ignored_and_prune_forgets_old_data():
    b = book()
    rec = forecast("ENERGY_CONSUMPTION", 1000.0, T0)
    b.on_forecast(rec | {"entity_kind": "PORTFOLIO"})
    b.on_forecast(rec | {"property": "ENERGY_FLEXIBILITY"})
    assert b("p1", T0).source == "NONE"
    b.on_baseline(baseline(4.0))
    b.on_forecast(rec)
    b.on_reading("p1", T0, 2.0)
    b.prune(T0 + 3 * 86_400_000)
    assert b.baselines["p1"] == {} and b.forecasts[("p1", "ENERGY_CONSUMPTION")].points == {}
    assert b.metered["p1"] == {}


def test_an_hour_ahead_point_starting_at_a_quarter_hour_covers_the_slots_of_its_hour():
    """The forecasts stage issues its hour-ahead point every 15 min, starting at the issue time (20:45 covers
    20:45-21:45): the desk reads that freshest point, not an older one starting on a whole hour or half hour."""
    b = book("FORECAST")
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 500.0, T0 - 2 * ISP, minutes=30))  # 10:00-10:30, 1 kW
    b.on_forecast(forecast("ENERGY_CONSUMPTION", 4000.0, T0 + ISP, start=T0 + ISP, minutes=60))  # 10:15-11:15
    assert b("p1", T0 + 7 * 60_000).baseline_kw == pytest.approx(1.0)  # 10:07: before the hour-ahead point
    assert b("p1", T0 + ISP + 7 * 60_000).baseline_kw == pytest.approx(4.0)  # 10:22: the newer hour-ahead
    assert b("p1", T0 + 5 * ISP - 1).baseline_kw == pytest.approx(4.0)  # 11:14:59.999: its last millisecond
    assert b("p1", T0 + 5 * ISP).source == "NONE"  # 11:15: nothing covers it
    b.prune(T0 + 5 * ISP + b.config.retention_ms + 1)
    assert b("p1", T0 + ISP).source == "NONE"  # pruned
