"""The weather-aware regression baseline: level from heating/cooling degrees, shape from the look-back days."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.baseline_weather import WeatherRegression, weather_baseline
from streams.analytics.baselines import BaselineConfig, day_baseline

SHAPE = 1.0 + 0.5 * np.sin(np.linspace(0, 2 * np.pi, 96, endpoint=False))


def _days(temps: np.ndarray, per_hdd: float = 0.3, per_cdd: float = 0.2) -> np.ndarray:
    """[days, 96] kW of a building whose daily level is 2 kW plus per_hdd per heating and per_cdd per cooling
    degree below 15 / above 22 degC."""
    level = 2.0 + per_hdd * np.maximum(15 - temps, 0) + per_cdd * np.maximum(temps - 22, 0)
    return level[:, None] * SHAPE[None, :]


def test_it_recovers_a_weather_driven_load_where_day_matching_is_biased():
    rng = np.random.default_rng(2)
    temps = rng.uniform(-5, 30, 40)
    temps[-1] = -3.0  # a cold event day
    load = _days(temps)
    kind, excluded = np.zeros(40, dtype=int), np.zeros(40, dtype=bool)
    bl = weather_baseline(load, temps, 39, kind, excluded)
    assert bl is not None and len(bl.source_days) == 20
    np.testing.assert_allclose(bl.kw, load[39], rtol=1e-9)
    avg = day_baseline(load, 39, kind, excluded, BaselineConfig("AVERAGE_Y", x=10, y=10), same_day=False)
    assert avg.kw.mean() < 0.8 * load[39].mean()  # ten days of mixed weather: far too low for a cold day
    assert bl.adjustment_kw.mean() == pytest.approx(load[39].mean() - load[bl.source_days].mean(), rel=1e-9)


def test_no_baseline_without_the_days_temperature_or_enough_days_and_unseen_terms_left_out():
    temps = np.full(30, 5.0) + np.arange(30) % 7  # always heating, never cooling
    load = _days(temps)
    kind, excluded = np.zeros(30, dtype=int), np.zeros(30, dtype=bool)
    hot = temps.copy()
    hot[-1] = 30.0  # no look-back day had cooling degrees: the term is not fitted, the level is the intercept
    bl = weather_baseline(load, hot, 29, kind, excluded)
    assert bl is not None and np.isfinite(bl.kw).all()
    unknown = temps.copy()
    unknown[-1] = np.nan
    assert weather_baseline(load, unknown, 29, kind, excluded) is None
    few = np.ones(30, dtype=bool)
    few[-5:] = False
    assert weather_baseline(load, temps, 29, kind, few, WeatherRegression()) is None  # 4 days < 8
    with pytest.raises(ValueError, match="min_days"):
        WeatherRegression(y=5, min_days=8)
