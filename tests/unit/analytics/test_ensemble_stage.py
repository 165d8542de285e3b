"""The forecasts stage with FORECAST_MODEL=ensemble: the stage's records are the evaluation harness's numbers.

One prosumer's 15-minute intervals go through :class:`ForecastProcessor` (MemoryState: every record loads and
stores the JSON state, so the codec is exercised on every step); the same series, summed into points, goes
through the harness's :class:`~streams.analytics.evaluation.online_models.Ensemble` adapter. Energies are
multiples of 1/8 Wh, so sums are exact in any order.
"""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.analytics import ensemble_stream
from streams.analytics.ensemble_state import dump_ensemble, load_ensemble
from streams.analytics.evaluation.online_models import Ensemble
from streams.analytics.evaluation.peers import Persistence
from streams.analytics.evaluation.protocol import HORIZONS, replay, to_points
from streams.analytics.forecast_processor import ForecastProcessor, ForecastTopics
from streams.analytics.weather import FieldsOf, WeatherSeries
from streams.analytics.weather_view import WeatherView
from streams.validation.limits import Limits
from tools.sim.flex_scenario import StaticView

SERDE = Serde()
STEP = 900_000
DAY = 86_400_000
DAY0 = 1_795_392_000_000  # 2026-11-23T00:00Z, a Monday
DAYS = 9
TOPIC = "meter.intervals.15m.v1"
TOPICS = ForecastTopics(TOPIC, "forecast.profiles.v1", "forecast.accuracy.v1")


def _series() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    ts = DAY0 + np.arange(DAYS * 96, dtype=np.int64) * STEP
    k = np.arange(ts.size)
    weekday = (k // 96) % 7
    base = 40 + 25 * np.sin(2 * np.pi * (k % 96) / 96) + 15 * (weekday >= 5)
    return ts, np.round(8 * base * rng.lognormal(0, 0.15, ts.size)) / 8


def _record(start: int, wh: float) -> Record:
    rec = {
        "event_id": f"dev-p/{start}/1", "device_id": "dev-p", "prosumer_id": "p", "interval_start": start,
        "interval_end": start + STEP, "import_wh": wh, "export_wh": 0.0, "avg_kw": wh * 4 / 1000,
        "max_kw": wh * 4 / 1000, "samples": 180, "expected_samples": 180, "completeness": 1.0,
        "estimated": False, "method": "POWER_INTEGRATION", "version": 1, "computed_at": start + STEP,
    }  # fmt: skip
    return Record(TOPIC, 0, 0, b"p", SERDE.encode("IntervalEnergy", rec, TOPIC), 0)


@pytest.fixture(scope="module")
def stage_run():
    ts, wh = _series()
    proc = ForecastProcessor(
        SERDE, TOPICS, Limits(), clock=lambda: (DAY0 + 10 * DAY) / 1000, model="ensemble"
    )
    state, forecasts, accuracy = MemoryState(), {}, []
    for t, v in zip(ts.tolist(), wh.tolist(), strict=True):
        for e in proc.on_record(_record(t, v), state):
            name, rec = SERDE.decode(e.value, e.topic)
            if name == "Forecast":
                forecasts[(rec["property"], rec["prediction_granularity"], rec["issued_at"])] = rec
            else:
                accuracy.append(rec)
    return ts, wh, forecasts, accuracy, state


@pytest.mark.parametrize(("horizon", "granularity"), [("intra-day", "INTRA_DAY"), ("day-ahead", "DAYAHEAD")])
def test_stage_records_are_the_harness_numbers(stage_run, horizon, granularity):
    ts, wh, forecasts, _, _ = stage_run
    h = HORIZONS[horizon]
    s = to_points(ts, wh, STEP, h.point_ms)
    model = Ensemble(h, shadow_days=DAYS + 1, options=ensemble_stream.STAGE_OPTIONS)
    rep = replay(s, h, [model, Persistence()], 2)
    assert rep.target_ts.shape[0] >= 2
    for o, start in enumerate(rep.target_ts[:, 0].tolist()):
        pts = forecasts[("ENERGY_CONSUMPTION", granularity, start)]["points"]
        assert [p["ts"] for p in pts] == rep.target_ts[o].tolist()
        np.testing.assert_array_equal([p["value"] for p in pts], rep.point["ensemble"][o])
        np.testing.assert_array_equal([p["lower"] for p in pts], rep.quantiles["ensemble"][0.1][o])
        np.testing.assert_array_equal([p["upper"] for p in pts], rep.quantiles["ensemble"][0.9][o])
        assert all(p["lower"] <= p["value"] <= p["upper"] for p in pts)


def test_accuracy_records_carry_pinball_and_coverage_of_the_issued_band(stage_run):
    ts, wh, forecasts, accuracy, _ = stage_run
    last = [
        r
        for r in accuracy
        if r["prediction_granularity"] == "DAYAHEAD" and r["property"] == "ENERGY_CONSUMPTION"
    ][-1]
    actual = dict(
        zip(to_points(ts, wh, STEP, 3_600_000).ts.tolist(), to_points(ts, wh, STEP, 3_600_000).y, strict=True)
    )
    losses, inside = [], []
    for (prop, g, _), rec in forecasts.items():
        if (prop, g) != ("ENERGY_CONSUMPTION", "DAYAHEAD"):
            continue
        for p in rec["points"]:
            a = actual.get(p["ts"])
            if a is None or p["lower"] is None or p["ts"] + 3_600_000 > last["as_of"]:
                continue
            losses.append(
                0.5
                * (
                    max(0.1 * (a - p["lower"]), -0.9 * (a - p["lower"]))
                    + max(0.9 * (a - p["upper"]), -0.1 * (a - p["upper"]))
                )
            )
            inside.append(p["lower"] <= a <= p["upper"])
    assert len(inside) >= 24 and last["model"] == "ensemble"
    assert last["pinball_wh"] == pytest.approx(float(np.mean(losses)), rel=1e-12)
    assert last["coverage"] == pytest.approx(float(np.mean(inside)), rel=1e-12)
    assert 0.5 < last["coverage"] <= 1.0 and 0 < last["mase"] < 1.2


def test_stored_series_is_json_and_malformed_values_are_refused(stage_run):
    *_, state = stage_run
    assert set(state.data) == {"e:p"} | {f"e:p/{p}/{h.name}" for p, h in ensemble_stream.SERIES}
    series = ensemble_stream.decode_series(state.data["e:p/ENERGY_CONSUMPTION/day-ahead"])
    assert ensemble_stream.encode_series(series) == state.data["e:p/ENERGY_CONSUMPTION/day-ahead"]
    dumped = dump_ensemble(series.model)
    bad = dumped.model_copy(update={"cell_counts": dumped.cell_counts[:-1]})
    with pytest.raises(ValueError, match="counts"):
        load_ensemble(bad)
    with pytest.raises(pydantic.ValidationError):
        ensemble_stream.decode_series(
            state.data["e:p/ENERGY_CONSUMPTION/day-ahead"].replace(b'"seen"', b'"exec"')
        )
    assert not math.isnan(series.model.level)


def _weather_view(temps: np.ndarray) -> WeatherView:
    """The forecasts stage's view of hourly temperatures ``temps`` from DAY0 (WeatherHour records)."""
    view = StaticView({})
    for i, t in enumerate(temps.tolist()):
        h = DAY0 + i * 3_600_000
        rec = {
            "event_id": f"site/{h}/0", "location_id": "site", "hour_start": h, "kind": "OBSERVED",
            "temp_c": t, "ghi_w_m2": None, "ghi_clear_w_m2": None, "issued_at": h + 3_600_000, "source": "test",
        }  # fmt: skip
        view.put(f"site/{h}".encode(), SERDE.encode("WeatherHour", rec, "weather.hourly.v1"))
    wv = WeatherView(view, "site", SERDE, "weather.hourly.v1")
    wv.refresh()
    return wv


def test_with_the_sites_weather_the_stage_ensemble_is_the_harness_ensemble_with_that_weather(stage_run):
    ts, wh, plain, _, _ = stage_run
    temps = np.repeat(np.random.default_rng(8).uniform(-5, 12, DAYS + 1), 24)
    hour = (ts - DAY0) // 3_600_000
    wh = wh + 40 * np.maximum(15 - temps[hour], 0)  # electric heating
    proc = ForecastProcessor(
        SERDE,
        TOPICS,
        Limits(),
        clock=lambda: (DAY0 + 10 * DAY) / 1000,
        model="ensemble",
        weather=_weather_view(temps),
    )
    state, forecasts = MemoryState(), {}
    for t, v in zip(ts.tolist(), wh.tolist(), strict=True):
        for e in proc.on_record(_record(t, v), state):
            name, rec = SERDE.decode(e.value, e.topic)
            if name == "Forecast":
                forecasts[(rec["property"], rec["prediction_granularity"], rec["issued_at"])] = rec
    h = HORIZONS["day-ahead"]
    weather = WeatherSeries(
        DAY0 + np.arange(temps.size, dtype=np.int64) * 3_600_000, 3_600_000, {"temp_c": temps}
    )
    options = {**ensemble_stream.STAGE_OPTIONS, "weather": FieldsOf(weather, ("temp_c",))}
    model = Ensemble(h, shadow_days=DAYS + 1, options=options)
    rep = replay(to_points(ts, wh, STEP, h.point_ms), h, [model, Persistence()], 2)
    for o, start in enumerate(rep.target_ts[:, 0].tolist()):
        pts = forecasts[("ENERGY_CONSUMPTION", "DAYAHEAD", start)]["points"]
        np.testing.assert_array_equal([p["value"] for p in pts], rep.point["ensemble"][o])
        assert pts != plain[("ENERGY_CONSUMPTION", "DAYAHEAD", start)]["points"]
    linear = ensemble_stream.decode_series(state.data["e:p/ENERGY_CONSUMPTION/day-ahead"]).model.linear
    assert linear.weather_fields == ("temp_c",)
