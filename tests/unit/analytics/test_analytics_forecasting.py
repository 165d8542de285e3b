"""Online forecaster, metrics and the CSV evaluation path on small synthetic series."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastavro.validation import validate

from edream.avro_schemas import load_schema
from streams.analytics import accuracy
from streams.analytics.evaluate import evaluate_forecast, load_csv
from streams.analytics.forecasting import HORIZONS, EntityForecaster, day_type, forecast_record

HOUR = 3_600_000
MONDAY = 1_700_438_400_000  # 2023-11-20 00:00 UTC


def weekly_series(days: int, noise: float = 0.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Hourly Wh: a daily shape, halved on weekends, optional multiplicative noise."""
    ts = MONDAY + np.arange(days * 24, dtype=np.int64) * HOUR
    hour = (ts % 86_400_000) // HOUR
    shape = 500 + 400 * np.sin(2 * np.pi * hour / 24) ** 2
    weekend = np.array([day_type(int(t)) > 0 for t in ts])
    y = shape * np.where(weekend, 0.5, 1.0)
    if noise:
        y = y * np.random.default_rng(seed).lognormal(0, noise, y.size)
    return ts, y


def test_day_type():
    assert [day_type(MONDAY + d * 86_400_000) for d in range(7)] == [0, 0, 0, 0, 0, 1, 2]


def test_metrics_by_hand():
    a, p, n = [10.0, 20.0, math.nan, 40.0], [12.0, 18.0, 5.0, 40.0], [10.0, 30.0, 1.0, 30.0]
    assert accuracy.mae(a, p) == pytest.approx(4 / 3)
    assert accuracy.nmae(a, p) == pytest.approx((4 / 3) / (70 / 3))
    assert accuracy.mape(a, p) == pytest.approx((0.2 + 0.1 + 0.0) / 3)
    assert accuracy.mase(a, p, n) == pytest.approx((4 / 3) / (20 / 3))
    assert accuracy.cv_rmse([2.0, 4.0], [1.0, 5.0]) == pytest.approx(1 / 3)
    assert accuracy.nmbe([2.0, 4.0], [1.0, 3.0]) == pytest.approx(2 / 6)
    acc = accuracy.OnlineAccuracy()
    for x, y, z in zip(a, p, n, strict=True):
        acc.update(x, y, z)
    f = acc.figures()
    assert f["n"] == 3 and f["mase"] == pytest.approx(0.2) and f["mape"] == pytest.approx(0.1)


def test_seasonal_naive_model_is_yesterday():
    ts, y = weekly_series(3)
    fc = EntityForecaster(HOUR, model="seasonal-naive")
    for t, v in zip(ts[:48].tolist(), y[:48].tolist(), strict=True):
        fc.observe(t, v)
    steps = fc.predict_steps(int(ts[48]), 24)
    assert steps == pytest.approx(y[24:48].tolist())


def test_linear_learns_weekly_pattern_and_beats_naive():
    ts, y = weekly_series(5 * 7, noise=0.05)
    fc = EntityForecaster(HOUR)
    preds, naive, actual = [], [], []
    for i, (t, v) in enumerate(zip(ts.tolist(), y.tolist(), strict=True)):
        if i >= 21 * 24 and t % 86_400_000 == 0:
            preds += [p["value"] for p in fc.forecast_points(t, HORIZONS["day-ahead"])]
            naive += fc.naive_points(t, HORIZONS["day-ahead"])
            actual += y[i : i + 24].tolist()
        fc.observe(t, v)
    assert len(preds) == 14 * 24
    assert accuracy.mase(actual, preds, naive) < 0.6  # naive misses every weekday/weekend switch
    assert accuracy.mape(actual, preds) < 0.1


@pytest.mark.parametrize(
    ("name", "points", "minutes"), [("day-ahead", 24, 60), ("intra-day", 8, 30), ("hour-ahead", 1, 60)]
)
def test_forecast_record_shape(name, points, minutes):
    ts, y = weekly_series(3)
    fc = EntityForecaster(900_000)
    for t, v in zip(ts.tolist(), y.tolist(), strict=True):  # hourly values fed as 15-min steps: gaps are NaN
        fc.observe(t, v / 4)
    h = HORIZONS[name]
    rec = forecast_record(
        "p1",
        "PROSUMER",
        "ENERGY_CONSUMPTION",
        h,
        MONDAY + 3 * 86_400_000,
        "linear",
        fc.forecast_points(MONDAY + 3 * 86_400_000, h),
    )
    assert len(rec["points"]) == points and rec["profile_granularity_minutes"] == minutes
    assert rec["event_id"] == f"p1/ENERGY_CONSUMPTION/{h.granularity}/{MONDAY + 3 * 86_400_000}"
    assert validate(rec, load_schema("Forecast"))


def test_evaluate_csv_roundtrip(tmp_path):
    ts, y = weekly_series(4 * 7, noise=0.05)
    path = tmp_path / "load.csv"
    lines = ["timestamp,value"] + [
        f"{np.datetime64(int(t), 'ms').astype('datetime64[s]')}Z,{v:.3f}" for t, v in zip(ts, y, strict=True)
    ]
    path.write_text("\n".join(lines))
    s = load_csv(path)
    assert s.step_ms == HOUR and s.values.size == ts.size
    r = evaluate_forecast(s, "day-ahead")
    assert r["points"] == 14 * 24
    assert r["mase"] < 1.0
