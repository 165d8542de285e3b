"""PV degradation as an event: history resampling, the PvDegradation record, the latest estimate per asset and
the derating of PV output in the VPP, which applies only on the nameplate (registry) path, never on top of a
forecast learnt from measured production. Hand-checkable numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from edream.avro_schemas import all_contracts
from edream.clickhouse import added_columns_ddl
from edream.serde import Serde
from edream.topology import Sink
from streams.vpp.export import derate_from_rd
from streams.vpp.outlook import ForecastBook, assets_for_slots, res_forecast
from streams.vpp.processor import VppConfig, VppProcessor
from streams.vpp.pv_degradation import (
    DegradationBook,
    InsufficientHistory,
    Method,
    PvHistory,
    degradation_record,
    derate_for,
    estimate_asset,
    history_from_interval_rows,
    nameplate_derate,
    pv_system,
    to_slots,
)
from streams.vpp.pv_model import PvSystem
from streams.vpp.registry import RegisteredAsset, RegistryError, validate_spec
from tools.sim.pv_synthetic import simulate_pv

T0 = 1_717_416_000_000  # 2024-06-03 12:00 UTC, a 30-minute boundary
MIN = 60_000
HALF_HOUR = 30 * MIN
YEAR_MS = 365.25 * 86_400_000
START_2021 = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp() * 1000)
PV_SITE = {"latitude_deg": 48.14, "longitude_deg": 11.58, "dc_capacity_kw": 10.0}


def _reg(at: int = T0, **fields) -> RegisteredAsset:
    return RegisteredAsset(validate_spec({"vpp_id": "v", **fields}, "test"), at)


def _estimate(asset_id: str = "pv-1", rd: float = -1.0, computed_at: int = T0, data_from: int = T0) -> dict:
    return {
        "event_id": f"{asset_id}/YOY_CLEARSKY/{data_from}/{data_from + 1}",
        "asset_id": asset_id,
        "vpp_id": "v",
        "rd_pct_per_year": rd,
        "ci_low": rd - 0.1,
        "ci_high": rd + 0.1,
        "confidence": 0.95,
        "pr_latest": 0.9,
        "pairs": 300,
        "days_used": 500,
        "slots_used": 20_000,
        "slots_total": 100_000,
        "data_from": data_from,
        "data_to": data_from + 1,
        "method": "YOY_CLEARSKY",
        "dc_capacity_kw": 10.0,
        "computed_at": computed_at,
    }


def _pv_forecast(entity: str, issued_at: int, start: int, kw: float) -> dict:
    """ENERGY_PRODUCTION forecast of ``kw`` mean over two 30-minute steps from ``start`` (Wh per step)."""
    return {
        "event_id": f"{entity}/ENERGY_PRODUCTION/INTRA_DAY/{issued_at}",
        "entity_id": entity,
        "entity_kind": "PROSUMER",
        "property": "ENERGY_PRODUCTION",
        "prediction_granularity": "INTRA_DAY",
        "profile_granularity_minutes": 30,
        "issued_at": issued_at,
        "model": "test",
        "points": [
            {"ts": start + i * HALF_HOUR, "value": kw * 500.0, "lower": None, "upper": None} for i in range(2)
        ],
    }


# ---- history ----


def test_to_slots_averages_readings_per_quarter_hour_ignoring_missing():
    t = np.array([0, 5 * MIN, 10 * MIN, 15 * MIN, 16 * MIN, 31 * MIN], dtype=np.int64) + T0
    p = np.array([100.0, 200.0, np.nan, 400.0, 600.0, np.nan])
    h = to_slots(t, p)
    assert h.times_ms.tolist() == [T0, T0 + 15 * MIN, T0 + 30 * MIN]
    assert h.power_w[:2].tolist() == [150.0, 500.0] and np.isnan(h.power_w[2])
    assert (h.data_from, h.data_to) == (T0, T0 + 45 * MIN)


def test_interval_rows_become_mean_watts_and_incomplete_intervals_missing():
    q = 15 * MIN
    rows = [(T0, T0 + q, 250.0, 1.0), (T0 + q, T0 + 2 * q, 100.0, 0.5), (T0 + 2 * q, T0 + 3 * q, 0.0, 1.0)]
    h = history_from_interval_rows(rows)
    assert h.power_w[0] == pytest.approx(1000.0)  # 250 Wh in 15 min = 1 kW
    assert np.isnan(h.power_w[1])  # half covered: not a measurement of production
    assert h.power_w[2] == 0.0
    assert history_from_interval_rows([]).span_days() == 0.0


# ---- registry PV parameters ----


def test_registry_pv_fields_validated_and_system_built_with_defaults():
    with pytest.raises(RegistryError, match="latitude_deg and longitude_deg go together"):
        validate_spec({"asset_id": "p", "vpp_id": "v", "kind": "PV", "p_max_kw": 8, "latitude_deg": 48}, "t")
    with pytest.raises(RegistryError, match="field 'tilt_deg'"):
        validate_spec({"asset_id": "p", "vpp_id": "v", "kind": "PV", "p_max_kw": 8, "tilt_deg": 95}, "t")
    spec = _reg(asset_id="p", kind="PV", p_max_kw=8.5, **PV_SITE).spec
    s = pv_system(spec)
    assert (s.dc_capacity_w, s.ac_limit_w, s.tilt_deg, s.azimuth_deg) == (10_000.0, 8_500.0, 30.0, 180.0)
    bare = _reg(asset_id="q", kind="PV", p_max_kw=8).spec
    with pytest.raises(ValueError, match="no latitude_deg/longitude_deg"):
        pv_system(bare)
    assert pv_system(bare, need_site=False).dc_capacity_w == 8_000.0  # irradiance mode needs no site
    with pytest.raises(ValueError, match="not PV"):
        pv_system(_reg(asset_id="w", kind="WIND", p_max_kw=8).spec)


# ---- estimate and record ----


@pytest.fixture(scope="module")
def synthetic():
    system = PvSystem(48.14, 11.58, 10_000, ac_limit_w=8_500)
    return simulate_pv(system, START_2021, years=3, rd_per_year=-0.008, seed=3)


def test_estimate_record_from_irradiance_history_round_trips_through_avro(synthetic):
    spec = _reg(asset_id="pv-roof", kind="PV", p_max_kw=8.5, **PV_SITE).spec
    history = PvHistory(synthetic.times_ms, synthetic.power_w, synthetic.poa_wm2, synthetic.temp_air_c)
    est, method = estimate_asset(spec, history)
    assert method == Method.YOY_IRRADIANCE
    rec = degradation_record(spec, est, method, history, computed_at_ms=T0)
    assert rec["rd_pct_per_year"] == pytest.approx(-0.8, abs=0.2)
    assert rec["ci_low"] <= rec["rd_pct_per_year"] <= rec["ci_high"]
    assert rec["event_id"] == f"pv-roof/YOY_IRRADIANCE/{START_2021}/{history.data_to}"
    assert (rec["vpp_id"], rec["dc_capacity_kw"], rec["computed_at"]) == ("v", 10.0, T0)
    assert 0 < rec["slots_used"] < rec["slots_total"] == len(history.times_ms)
    serde = Serde()
    name, back = serde.decode(serde.encode("PvDegradation", rec, "t"), "t")
    assert (name, back) == ("PvDegradation", rec)
    # same history and method -> same event id (a re-run replaces, never duplicates)
    again = degradation_record(spec, *estimate_asset(spec, history), history, computed_at_ms=T0 + 1)
    assert again["event_id"] == rec["event_id"] and again["rd_pct_per_year"] == rec["rd_pct_per_year"]


def test_short_history_is_refused_with_the_span():
    system = PvSystem(48.14, 11.58, 10_000, ac_limit_w=8_500)
    pv = simulate_pv(system, START_2021, years=0.6, rd_per_year=-0.008, seed=1)
    spec = _reg(asset_id="pv-new", kind="PV", p_max_kw=8.5, **PV_SITE).spec
    with pytest.raises(InsufficientHistory, match=r"'pv-new': the history covers 219 days \(2021-01-01"):
        estimate_asset(spec, PvHistory(pv.times_ms, pv.power_w))


def test_long_history_without_usable_pairs_is_insufficient_too():
    t = START_2021 + np.arange(400 * 96, dtype=np.int64) * 15 * MIN
    spec = _reg(asset_id="pv-off", kind="PV", p_max_kw=8.5, **PV_SITE).spec
    with pytest.raises(InsufficientHistory, match="too few year-on-year pairs"):
        estimate_asset(spec, PvHistory(t, np.zeros(len(t))))  # 400 days of outage


# ---- latest estimate and derate ----


def test_book_keeps_the_latest_computed_estimate():
    book = DegradationBook()
    assert book.observe(_estimate(rd=-0.5, computed_at=T0))
    assert not book.observe(_estimate(rd=-2.0, computed_at=T0 - 1))  # older replay
    assert book.get("pv-1")["rd_pct_per_year"] == -0.5
    assert book.observe(_estimate(rd=-0.7, computed_at=T0 + 1))
    assert book.get("pv-1")["rd_pct_per_year"] == -0.7


def test_nameplate_derate_over_years_since_commissioning_clipped():
    rec = _estimate(rd=-1.0, data_from=T0 - int(2 * YEAR_MS))
    assert nameplate_derate(rec, T0 - int(5 * YEAR_MS), T0) == pytest.approx(0.99**5)
    assert nameplate_derate(rec, None, T0) == pytest.approx(0.99**2)  # no commissioning date: since data_from
    assert nameplate_derate(_estimate(rd=+0.5), T0 - int(4 * YEAR_MS), T0) == 1.0  # never above nameplate
    assert nameplate_derate(rec, T0 + 1000, T0) == 1.0  # reference in the future: no years yet
    assert derate_from_rd(-1.0, 5) == pytest.approx(0.99**5)


def test_derate_for_pv_with_an_estimate_only():
    book = DegradationBook()
    book.observe(_estimate("pv-1", rd=-1.0, data_from=T0 - int(3 * YEAR_MS)))
    book.observe(_estimate("wind-1", rd=-1.0, data_from=T0 - int(3 * YEAR_MS)))
    pv = _reg(asset_id="pv-1", kind="PV", p_max_kw=10).spec
    assert derate_for(pv, book, T0) == pytest.approx(0.99**3)
    assert derate_for(_reg(asset_id="pv-2", kind="PV", p_max_kw=10).spec, book, T0) == 1.0
    assert derate_for(_reg(asset_id="wind-1", kind="WIND", p_max_kw=10).spec, book, T0) == 1.0
    assert derate_for(pv, None, T0) == 1.0


def test_res_forecast_derates_the_nameplate_path_only():
    book = DegradationBook()
    commissioned = T0 - int(10 * YEAR_MS)
    book.observe(_estimate("pv-reg", rd=-1.0))
    book.observe(_estimate("pv-fc", rd=-1.0))
    start, end = T0 + HALF_HOUR, T0 + 2 * HALF_HOUR
    nameplate = _reg(asset_id="pv-reg", kind="PV", p_max_kw=10, current_kw=8, commissioned_at=commissioned)
    learnt = _reg(
        asset_id="pv-fc",
        kind="PV",
        p_max_kw=10,
        current_kw=8,
        commissioned_at=commissioned,
        forecast_entity_id="site-fc",
    )
    forecasts = ForecastBook()
    f = res_forecast(nameplate, forecasts, start, end, book)
    assert (f.p50_kw, f.derate) == (8.0, pytest.approx(0.99**10, abs=1e-3))
    # a forecast entity without a covering forecast falls back to the registry: derated too
    assert res_forecast(learnt, forecasts, start, end, book).derate == pytest.approx(0.99**10, abs=1e-3)
    # a forecast learnt from measured production covers the slot: degradation is in it, not applied again
    forecasts.observe(_pv_forecast("site-fc", T0, start, kw=6.0))
    g = res_forecast(learnt, forecasts, start, end, book)
    assert (g.p50_kw, g.derate) == (6.0, 1.0)
    # capability sees the derated median too
    [a] = assets_for_slots([nameplate], forecasts, None, [start], HALF_HOUR, book)  # type: ignore[arg-type]
    assert a.forecast_kw == (pytest.approx(8.0 * 0.99**10, abs=1e-3),)


# ---- processor and stream ----


def _processor() -> VppProcessor:
    proc = VppProcessor(VppConfig())
    commissioned = T0 - int(10 * YEAR_MS)
    proc.on_asset(_reg(asset_id="pv-reg", kind="PV", p_max_kw=10, current_kw=8, commissioned_at=commissioned))
    proc.on_asset(
        _reg(
            asset_id="pv-fc",
            kind="PV",
            p_max_kw=10,
            current_kw=8,
            commissioned_at=commissioned,
            forecast_entity_id="site-fc",
        )
    )
    proc.on_forecast(_pv_forecast("site-fc", T0, T0 + HALF_HOUR, kw=6.0))
    return proc


def test_export_uses_derated_nameplate_pv_and_undiminished_forecast():
    proc = _processor()
    before = proc.evaluate_export("v", T0 + 7 * MIN)
    assert before["export_p50_kw"] == pytest.approx(8.0 + 6.0)
    proc.on_degradation(_estimate("pv-reg", rd=-1.0, computed_at=T0))
    proc.on_degradation(_estimate("pv-fc", rd=-1.0, computed_at=T0))
    after = proc.evaluate_export("v", T0 + 7 * MIN)
    derate = derate_from_rd(-1.0, (T0 + HALF_HOUR - (T0 - int(10 * YEAR_MS))) / YEAR_MS)
    assert after["export_p50_kw"] == pytest.approx(8.0 * derate + 6.0, abs=1e-6)
    assert after["export_p50_kw"] < before["export_p50_kw"]


# ---- ClickHouse schema evolution of the registry table ----


def test_columns_added_to_a_contract_are_added_to_an_older_table():
    c = all_contracts()["VppAsset"]
    sink = Sink(name="vpp_assets", topic="vpp.assets.v1", table="vpp_assets", order_by=["asset_id"])
    old = {f["name"] for f in c.raw["fields"]} - {"latitude_deg", "meter_device_id"}
    ddl = added_columns_ddl(sink, c, old)
    assert [d.split("`")[1] for d in ddl] == ["latitude_deg", "meter_device_id"]
    assert ddl[0].startswith(
        "ALTER TABLE vpp_assets ADD COLUMN IF NOT EXISTS `latitude_deg` Nullable(Float64)"
    )
    assert added_columns_ddl(sink, c, {f["name"] for f in c.raw["fields"]}) == []
