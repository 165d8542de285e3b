"""The VPP service without a broker: export timers, forecast/baseline outlook, capability answers, the stream
adapter (decode, dead-letter reasons, snapshot/restore). Hand-checkable numbers."""

from __future__ import annotations

import pytest

from streams.vpp.assets import SERVICES, Asset, AssetKind, Direction
from streams.vpp.capability import CapabilityRequest, evaluate_capability
from streams.vpp.events import request_record
from streams.vpp.outlook import BaselineBook, ForecastBook
from streams.vpp.processor import LastExport, VppConfig, VppProcessor, export_due
from streams.vpp.registry import RegisteredAsset, validate_spec

T0 = 1_717_416_000_000  # 2024-06-03 12:00 UTC, a 30-minute boundary
MIN = 60_000
HALF_HOUR = 30 * MIN


def _reg(at: int = T0, **fields) -> RegisteredAsset:
    return RegisteredAsset(validate_spec({"vpp_id": "v", **fields}, "test"), at)


def _forecast(entity: str, prop: str, issued_at: int, points: list[tuple[int, float]], step_min: int = 30):
    return {
        "event_id": f"{entity}/{prop}/INTRA_DAY/{issued_at}",
        "entity_id": entity,
        "entity_kind": "PROSUMER",
        "property": prop,
        "prediction_granularity": "INTRA_DAY",
        "profile_granularity_minutes": step_min,
        "issued_at": issued_at,
        "model": "test",
        "points": [{"ts": ts, "value": wh, "lower": None, "upper": None} for ts, wh in points],
    }


# ---- export timer (pure) ----


def test_export_due_on_new_period_or_portfolio_change():
    every = HALF_HOUR
    assert export_due(T0, every, 0, None)  # never evaluated
    last = LastExport(T0 + MIN, portfolio_updated_at=T0 - 5)
    assert not export_due(T0 + 29 * MIN, every, T0 - 5, last)  # same period, same portfolio
    assert export_due(T0 + 30 * MIN, every, T0 - 5, last)  # the clock entered the next period
    assert export_due(T0 + 10 * MIN, every, T0 + 1, last)  # an asset changed after the evaluation


def test_tick_evaluates_each_vpp_once_per_period_for_the_next_window():
    proc = VppProcessor(VppConfig())
    proc.on_asset(_reg(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=40))
    proc.on_asset(_reg(asset_id="w-load", kind="CURTAILABLE_LOAD", p_max_kw=5, current_kw=4, vpp_id="w"))

    first = proc.on_tick(T0 + 7 * MIN)
    assert [(o.topic, o.key) for o in first] == [("vpp.export.v1", "v"), ("vpp.export.v1", "w")]
    v = first[0].record
    # the next 30-minute window after 12:07 is 12:30-13:00; hydro 40 kW now, ramp unlimited -> 50 kW
    assert (v["slot_start"], v["slot_end"], v["evaluated_at"]) == (
        T0 + HALF_HOUR,
        T0 + 2 * HALF_HOUR,
        T0 + 7 * MIN,
    )
    assert (v["export_p50_kw"], v["offered_kw"], v["decision"]) == (50.0, 50.0, "OFFER")
    assert first[1].record["export_p50_kw"] == 4.0
    assert v["event_id"] == f"v/INTRADAY/{T0 + HALF_HOUR}/{T0 + 7 * MIN}"

    assert proc.on_tick(T0 + 8 * MIN) == []  # same period: nothing
    assert proc.on_tick(T0 + 29 * MIN) == []
    again = proc.on_tick(T0 + 30 * MIN + 500)  # 12:30: the next timer, window 13:00-13:30
    assert [o.record["slot_start"] for o in again] == [T0 + 2 * HALF_HOUR] * 2

    # an asset change re-evaluates that VPP at the next tick, within the period
    proc.on_asset(_reg(T0 + 31 * MIN, asset_id="hydro", kind="GENERATOR", p_max_kw=60, current_kw=40))
    changed = proc.on_tick(T0 + 32 * MIN)
    assert [(o.key, o.record["export_p50_kw"]) for o in changed] == [("v", 60.0)]


def test_removed_vpp_is_no_longer_evaluated():
    proc = VppProcessor()
    proc.on_asset(_reg(asset_id="pv", kind="PV", p_max_kw=10, current_kw=3))
    assert len(proc.on_tick(T0)) == 1
    proc.on_asset(_reg(T0 + 1, asset_id="pv", kind="PV", p_max_kw=10, active=False))
    assert proc.on_tick(T0 + HALF_HOUR) == []


def test_configurable_cadence_and_prices():
    cfg = VppConfig(
        export_every_minutes=5, price_forecast_micro_per_kwh=80_000, threshold_micro_per_kwh=100_000
    )
    proc = VppProcessor(cfg)
    proc.on_asset(_reg(asset_id="pv", kind="PV", p_max_kw=10, current_kw=3))
    assert proc.on_tick(T0)[0].record["decision"] == "HANDOVER"  # price forecast below threshold
    assert proc.on_tick(T0 + 4 * MIN) == []
    assert len(proc.on_tick(T0 + 5 * MIN)) == 1


# ---- outlook: forecasts and baselines as mean kW ----


def test_forecast_book_mean_kw_latest_issue_and_coverage():
    book = ForecastBook()
    # 30-min points of 500 Wh = 1 kW and 1000 Wh = 2 kW
    book.observe(_forecast("p1", "ENERGY_PRODUCTION", T0, [(T0, 500.0), (T0 + HALF_HOUR, 1000.0)]))
    assert book.over("p1", "ENERGY_PRODUCTION", T0, T0 + HALF_HOUR).kw == pytest.approx(1.0)
    assert book.over("p1", "ENERGY_PRODUCTION", T0 + 15 * MIN, T0 + 45 * MIN).kw == pytest.approx(1.5)
    assert book.over("p1", "ENERGY_PRODUCTION", T0 + HALF_HOUR, T0 + 3 * HALF_HOUR) is None  # not covered
    assert book.over("p1", "ENERGY_CONSUMPTION", T0, T0 + HALF_HOUR) is None
    assert not book.observe(_forecast("p1", "ENERGY_PRODUCTION", T0 - 1, [(T0, 5.0)]))  # older issue
    book.observe(_forecast("p1", "ENERGY_PRODUCTION", T0 + 1, [(T0, 250.0)]))
    assert book.over("p1", "ENERGY_PRODUCTION", T0, T0 + HALF_HOUR).kw == pytest.approx(0.5)


def test_baseline_book_weighted_mean_versions_and_pruning():
    book = BaselineBook()
    q = 15 * MIN
    for i, kw in enumerate((2.0, 4.0)):
        book.observe(
            {"prosumer_id": "p", "isp_start": T0 + i * q, "isp_end": T0 + (i + 1) * q, "baseline_kw": kw}
        )
    assert book.over("p", T0, T0 + HALF_HOUR) == pytest.approx(3.0)
    book.observe({"prosumer_id": "p", "isp_start": T0, "isp_end": T0 + q, "baseline_kw": 6.0, "version": 2})
    assert book.over("p", T0, T0 + HALF_HOUR) == pytest.approx(5.0)
    assert book.over("p", T0, T0 + 3 * q) is None
    book.prune(T0 + q + 1)
    assert book.over("p", T0 + q, T0 + HALF_HOUR) == pytest.approx(4.0) and book.over("p", T0, T0 + q) is None


def test_export_uses_forecasts_and_baselines_of_the_window():
    proc = VppProcessor()
    proc.on_asset(
        _reg(
            asset_id="pv",
            kind="PV",
            p_max_kw=10,
            current_kw=0,
            forecast_entity_id="site-1",
            uncertainty_min=0.8,
        )
    )
    proc.on_asset(
        _reg(
            asset_id="load",
            kind="CURTAILABLE_LOAD",
            p_max_kw=20,
            current_kw=1,
            curtailable_share=0.5,
            forecast_entity_id="site-2",
        )
    )
    window = T0 + HALF_HOUR
    # PV forecast 3000 Wh in the window = 6 kW; load consumption forecast 4 kW, but the baseline (8 kW) wins
    proc.on_forecast(_forecast("site-1", "ENERGY_PRODUCTION", T0, [(window, 3000.0)]))
    proc.on_forecast(_forecast("site-2", "ENERGY_CONSUMPTION", T0, [(window, 2000.0)]))
    for i in range(2):
        start = window + i * 15 * MIN
        proc.on_baseline(
            {"prosumer_id": "site-2", "isp_start": start, "isp_end": start + 15 * MIN, "baseline_kw": 8.0}
        )
    rec = proc.on_tick(T0 + MIN)[0].record
    # p50: PV 6 + load shed 8 x 0.5 = 10; p10: PV 6 x 0.8 + 4 = 8.8
    assert (rec["export_p50_kw"], rec["export_p10_kw"]) == (10.0, 8.8)
    assert rec["setpoints"] == [{"asset_id": "load", "setpoint_kw": 4.0}]


def test_community_portfolio_forecast_is_served_first():
    proc = VppProcessor()
    proc.on_asset(_reg(asset_id="hydro", kind="GENERATOR", p_max_kw=50, current_kw=50))
    window = T0 + HALF_HOUR
    proc.on_forecast(_forecast("v", "ENERGY_CONSUMPTION", T0, [(window, 15_000.0)]))  # 30 kW
    proc.on_forecast(_forecast("v", "ENERGY_PRODUCTION", T0, [(window, 5_000.0)]))  # 10 kW
    assert proc.on_tick(T0)[0].record["export_p50_kw"] == 30.0  # 50 - (30 - 10)


# ---- capability ----


def _request(rid: str, vpp: str = "v", service: str = "EFR") -> dict:
    req = CapabilityRequest(rid, SERVICES[service], T0 + HALF_HOUR, T0 + 2 * HALF_HOUR)
    return request_record(req, vpp, T0)


def test_capability_answered_once_with_deterministic_id():
    proc = VppProcessor()
    proc.on_asset(
        _reg(
            asset_id="bess",
            kind="BESS",
            p_max_kw=50,
            energy_kwh=100,
            soc_pct=60,
            response_time_s=0.5,
            directions=["UP", "DOWN"],
        )
    )
    proc.on_asset(_reg(asset_id="other", kind="BESS", p_max_kw=70, vpp_id="w"))
    [ans] = proc.on_request(_request("req-1"))
    assert ans.topic == "vpp.capability.v1" and ans.key == "v"
    rec = ans.record
    assert (rec["event_id"], rec["computed_at"], rec["capacity_kw"], rec["feasible"]) == (
        "req-1/capability",
        T0,
        50.0,
        True,
    )  # only v's BESS, no generator in the portfolio
    assert proc.on_request(_request("req-1")) == []  # redelivered: not answered twice


def test_capability_uses_the_per_slot_outlook_of_res():
    proc = VppProcessor()
    proc.on_asset(
        _reg(asset_id="pv", kind="PV", p_max_kw=10, current_kw=9, forecast_entity_id="s", directions=["DOWN"])
    )
    start = T0 + HALF_HOUR
    proc.on_forecast(
        _forecast("s", "ENERGY_PRODUCTION", T0, [(start, 1000.0), (start + HALF_HOUR, 1500.0)], 30)
    )
    rec = _request("down", service="EFR") | {
        "direction": "DOWN",
        "slot_minutes": 30,
        "window_end": start + 2 * HALF_HOUR,
    }
    [ans] = proc.on_request(rec)
    # DOWN headroom of PV = its output: forecast 2 kW then 3 kW (not the registry's 9 kW)
    assert [s["capacity_kw"] for s in ans.record["slots"]] == [2.0, 3.0]


def test_evaluate_capability_without_generators():
    bess = Asset(
        "b",
        AssetKind.BESS,
        p_max_kw=50,
        energy_kwh=100,
        soc_pct=60,
        directions=frozenset({Direction.UP, Direction.DOWN}),
    )
    req = CapabilityRequest("r", SERVICES["EFR"], T0, T0 + HALF_HOUR)
    assert (evaluate_capability([bess], req).capacity_kw, evaluate_capability([bess], req).feasible) == (
        50.0,
        True,
    )
    assert (
        evaluate_capability(
            [bess], CapabilityRequest("r", SERVICES["EFR"], T0, T0 + HALF_HOUR, demand_kw=(5.0, 5.0))
        ).feasible
        is False
    )
