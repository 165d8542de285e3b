"""Weather covariates (issue 17): the series' point means and checks, and forecasters that read it."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.ensemble import EnsembleForecaster
from streams.analytics.ensemble_state import dump_ensemble, load_ensemble
from streams.analytics.evaluation import metrics
from streams.analytics.evaluation.online_models import RiverModel
from streams.analytics.evaluation.peers import LightGbmPeer, SeasonalNaive
from streams.analytics.evaluation.protocol import HORIZONS, replay, to_points
from streams.analytics.forecast_state import ForecasterState, dump_forecaster, load_forecaster
from streams.analytics.forecasting import EntityForecaster
from streams.analytics.gbm_direct import feature_names
from streams.analytics.weather import WeatherSeries

MONDAY = 1_795_392_000_000  # 2026-11-23T00:00Z
HALF_HOUR = 1_800_000
HOUR = 3_600_000


def test_point_values_are_the_mean_of_the_steps_inside_or_the_step_that_contains_the_point():
    ts = MONDAY + np.arange(6, dtype=np.int64) * HALF_HOUR
    w = WeatherSeries(ts, HALF_HOUR, {"temp_c": np.array([1.0, 3.0, np.nan, 5.0, np.nan, np.nan])})
    hourly = w.on_points(MONDAY + np.arange(4, dtype=np.int64) * HOUR, HOUR)["temp_c"]
    np.testing.assert_array_equal(hourly, [2.0, 5.0, np.nan, np.nan])  # the 4th hour lies after the series
    quarter = w.on_points(np.array([MONDAY + 900_000, MONDAY - 900_000]), 900_000)["temp_c"]
    np.testing.assert_array_equal(quarter, [1.0, np.nan])
    assert w.only(("temp_c",)).fields == ("temp_c",)


@pytest.mark.parametrize(
    ("values", "step", "match"),
    [
        ({"wind": np.zeros(3)}, HOUR, "unknown weather fields"),
        ({"temp_c": np.array([1.0, 200.0, 2.0])}, HOUR, "temp_c: 1 values outside"),
        ({"ghi_w_m2": np.array([1.0, -5.0, np.nan])}, HOUR, "ghi_w_m2: 1 values outside"),
        ({"temp_c": np.zeros(2)}, HOUR, "2 values for 3 steps"),
        ({"temp_c": np.zeros(3)}, HALF_HOUR, "not a regular grid"),
    ],
)
def test_a_weather_series_is_checked_when_built(values, step, match):
    with pytest.raises(ValueError, match=match):
        WeatherSeries(MONDAY + np.arange(3, dtype=np.int64) * HOUR, step, values)


def _cloudy_pv(days: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, WeatherSeries]:
    """Hourly PV energy (Wh) of a 5-kWp system under a clear-sky bell scaled by a random cloudiness per day and
    hour (AR(1) within the day): only the weather tells a cloudy day from a sunny one."""
    rng = np.random.default_rng(seed)
    n = days * 24
    ts = MONDAY + np.arange(n, dtype=np.int64) * HOUR
    hour = np.arange(n) % 24
    clear = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None) * 900.0  # W/m2
    kt = np.empty(n)
    for d in range(days):
        level = rng.uniform(0.15, 1.0)
        kt[d * 24 : (d + 1) * 24] = np.clip(level + np.cumsum(rng.normal(0, 0.05, 24)), 0.05, 1.0)
    ghi = clear * kt
    temp = 15 + 10 * kt + rng.normal(0, 1, n)
    y = 5.0 * ghi * (1 - 0.004 * (temp - 25)) + rng.normal(0, 20, n).clip(min=0) * (clear > 0)
    w = WeatherSeries(ts, HOUR, {"temp_c": temp, "ghi_w_m2": ghi, "ghi_clear_w_m2": clear})
    return ts, y, w


def test_the_lightgbm_model_with_the_weather_forecast_beats_it_without_on_cloudy_pv():
    ts, y, w = _cloudy_pv(40)
    h = HORIZONS["day-ahead"]
    s = to_points(ts, y, HOUR, h.point_ms)
    models = [
        SeasonalNaive(1),
        LightGbmPeer(h.points, rounds=80),
        LightGbmPeer(h.points, rounds=80, name="lightgbm-weather", weather=w),
    ]
    m = metrics.score(replay(s, h, models, 5))["models"]
    assert m["lightgbm-weather"]["mae"] < 0.5 * m["lightgbm"]["mae"], m
    assert feature_names(w)[-5:] == (
        "temp_c",
        "ghi_w_m2",
        "ghi_clear_w_m2",
        "ghi_w_m2_rel",
        "ghi_clear_w_m2_rel",
    )


def test_a_stored_weather_aware_ensemble_forecasts_the_same_with_the_weather_given_back():
    ts, y, w = _cloudy_pv(20)
    f = EnsembleForecaster(HOUR, 24, gbm_rounds=30, weather=w)
    for t, v in zip(ts[:-24].tolist(), y[:-24].tolist(), strict=True):
        f.observe(t, v)
    assert f.retrain_due() and f.retrain()
    start = int(ts[-24])
    again = load_ensemble(dump_ensemble(f), weather=w)
    np.testing.assert_array_equal(again.forecast(start).point, f.forecast(start).point)
    blind = load_ensemble(dump_ensemble(f))  # the trees need the weather they were trained with
    with pytest.raises(ValueError, match="needs the same weather fields"):
        blind.forecast(start)


def _heating_load(days: int, seed: int = 4) -> tuple[np.ndarray, np.ndarray, WeatherSeries]:
    """Hourly load (Wh) of an electrically heated building: a daily shape plus 120 Wh per heating degree below
    15 degC, under day-to-day weather swings of +-8 degC."""
    rng = np.random.default_rng(seed)
    n = days * 24
    ts = MONDAY + np.arange(n, dtype=np.int64) * HOUR
    hour = np.arange(n) % 24
    temp = np.repeat(rng.uniform(-2, 14, days), 24) + 3 * np.sin(2 * np.pi * (hour - 9) / 24)
    y = 400 + 200 * (hour >= 17) * (hour <= 21) + 120 * np.clip(15 - temp, 0, None) + rng.normal(0, 30, n)
    return ts, y, WeatherSeries(ts, HOUR, {"temp_c": temp})


@pytest.mark.parametrize("data", [_cloudy_pv, _heating_load])
def test_the_online_linear_model_with_the_weather_beats_it_without(data):
    ts, y, w = data(40)
    h = HORIZONS["day-ahead"]
    s = to_points(ts, y, HOUR, h.point_ms)
    models = [SeasonalNaive(1), RiverModel(h, model="linear"), RiverModel(h, model="linear", weather=w)]
    m = metrics.score(replay(s, h, models, 7))["models"]
    assert m["river-linear-weather"]["mae"] < 0.6 * m["river-linear"]["mae"], m


def test_a_stored_linear_forecaster_keeps_its_weather_features_and_reads_the_weather_again():
    ts, y, w = _cloudy_pv(20)
    f = EntityForecaster(HOUR, weather=w, weather_fields=("ghi_w_m2", "temp_c"))
    for t, v in zip(ts[:-24].tolist(), y[:-24].tolist(), strict=True):
        f.observe(t, v)
    start = int(ts[-24])
    state = ForecasterState.model_validate_json(dump_forecaster(f).model_dump_json())
    assert state.weather_fields == ["ghi_w_m2", "temp_c"] and state.yield_ghi > 0
    assert load_forecaster(state, w).predict_steps(start, 24) == f.predict_steps(start, 24)
    blind = load_forecaster(state).predict_steps(start, 24)  # no weather: neutral values, still a forecast
    assert all(np.isfinite(blind)) and blind != f.predict_steps(start, 24)
    with pytest.raises(ValueError, match="unknown weather fields"):
        EntityForecaster(HOUR, weather=w, weather_fields=("wind",))
