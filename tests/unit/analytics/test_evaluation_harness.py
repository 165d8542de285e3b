"""The evaluation harness: naive figures from first principles, no look-ahead, metrics, the peers learn."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.evaluation import metrics
from streams.analytics.evaluation.peers import LightGbmPeer, MstlArima, Persistence, SeasonalNaive
from streams.analytics.evaluation.protocol import HORIZONS, Prediction, replay, to_points

MONDAY = 1_700_438_400_000  # 2023-11-20 00:00 UTC
HALF_HOUR = 1_800_000
DAYS, EVAL_DAYS = 9, 2


def _ramp() -> tuple[np.ndarray, np.ndarray]:
    """Half-hourly energies: slot of the day (0..47) + 100 x day number."""
    n = DAYS * 48
    ts = MONDAY + np.arange(n, dtype=np.int64) * HALF_HOUR
    k = np.arange(n)
    return ts, (k % 48 + 100 * (k // 48)).astype(float)


def _naive_mae_by_hand(y: np.ndarray, per_day: int, points: int, lag_of) -> float:
    """Reference: loop over the last EVAL_DAYS days' origins, forecast ``y[lag_of(origin, lead)]``."""
    errs = []
    for o in range(y.size - EVAL_DAYS * per_day, y.size, points):
        for h in range(points):
            errs.append(abs(y[o + h] - y[lag_of(o, h)]))
    return sum(errs) / len(errs)


@pytest.mark.parametrize(
    ("horizon", "persistence", "day", "week"),
    [
        # hourly points 4k + 1 + 200 d: persistence misses by 4, at midnight by 200 - 92
        ("hour-ahead", (23 * 4 + 108) / 24, 200.0, 1400.0),
        # 30-min points s + 100 d, origins every 4 h: lead h misses by h + 1, by 53 + h after midnight
        ("intra-day", (5 * 36 + 8 * 53 + 28) / 48, 100.0, 700.0),
        # hourly, issued at 00:00: the last point of yesterday (93 + 200 (d - 1)) misses by 4 k + 108
        ("day-ahead", 4 * 11.5 + 108, 200.0, 1400.0),
    ],
)
def test_naive_figures_match_first_principles(horizon, persistence, day, week):
    ts, v = _ramp()
    h = HORIZONS[horizon]
    s = to_points(ts, v, HALF_HOUR, h.point_ms)
    rep = replay(s, h, [Persistence(), SeasonalNaive(1), SeasonalNaive(7)], EVAL_DAYS)
    fig = metrics.score(rep)
    p = s.per_day
    by_hand = {
        "persistence": _naive_mae_by_hand(s.y, p, h.points, lambda o, _h: o - 1),
        "seasonal-naive-day": _naive_mae_by_hand(s.y, p, h.points, lambda o, k: o + k - p),
        "seasonal-naive-week": _naive_mae_by_hand(s.y, p, h.points, lambda o, k: o + k - 7 * p),
    }
    closed = {"persistence": persistence, "seasonal-naive-day": day, "seasonal-naive-week": week}
    assert fig["points"] == EVAL_DAYS * p
    for name, expected in closed.items():
        assert fig["models"][name]["mae"] == pytest.approx(expected, rel=1e-12)
        assert fig["models"][name]["mae"] == pytest.approx(by_hand[name], rel=1e-12)
    scale = (
        min(persistence, day) if horizon == "intra-day" else persistence if horizon == "hour-ahead" else day
    )
    assert fig["models"]["seasonal-naive-week"]["mase"] == pytest.approx(week / scale, rel=1e-12)
    assert fig["mase_scale"] == ("seasonal-naive-day" if horizon == "day-ahead" else "persistence")


class _Spy:
    """Records what it is shown; forecasts the true future if it could see it (it must not)."""

    name = "spy"

    def __init__(self):
        self.seen: list[tuple[int, int, int]] = []

    def forecast(self, history, history_ts, target_ts):
        self.seen.append((history.size, int(history_ts[-1]), int(target_ts[0])))
        history[:] = -1.0  # writing into the history must not change the series
        return Prediction(np.zeros(target_ts.size))


def test_models_only_see_the_history_before_each_origin():
    ts, v = _ramp()
    h = HORIZONS["intra-day"]
    s = to_points(ts, v, HALF_HOUR, h.point_ms)
    spy = _Spy()
    rep = replay(s, h, [spy, Persistence()], EVAL_DAYS)
    assert len(spy.seen) == EVAL_DAYS * 6
    for size, last_ts, first_target in spy.seen:
        assert last_ts == s.ts[size - 1] and first_target == s.ts[size] == last_ts + h.point_ms
    np.testing.assert_array_equal(s.y, v)  # the spy's writes went to a copy
    assert not np.isnan(rep.point["persistence"]).any()


def test_points_with_a_missing_step_are_not_scored_for_anyone():
    ts, v = _ramp()
    v[-5] = np.nan
    h = HORIZONS["hour-ahead"]
    rep = replay(to_points(ts, v, HALF_HOUR, h.point_ms), h, [Persistence(), SeasonalNaive(1)], EVAL_DAYS)
    # the missing actual and the next origin's persistence (its last point is missing) drop out
    assert metrics.score(rep)["points"] == EVAL_DAYS * 24 - 2


def test_pinball_coverage_and_mape_away_from_zero():
    a = np.array([0.0, 10.0, 20.0, 30.0])
    assert metrics.pinball(a, np.full(4, 10.0), 0.9) == pytest.approx(
        (1 + 0 + 9 + 18) / 4
    )  # 0 vs 10: 0.1 x 10
    mp, share = metrics.mape_away_from_zero(a, a * 1.1)
    assert mp == pytest.approx(0.1) and share == 0.75
    ts, v = _ramp()
    h = HORIZONS["day-ahead"]
    rep = replay(to_points(ts, v, HALF_HOUR, h.point_ms), h, [SeasonalNaive(1)], EVAL_DAYS)
    rep.quantiles["seasonal-naive-day"] = {
        0.1: rep.actual - 1.0,
        0.9: rep.actual + (rep.actual % 2 == 0) - 0.5,
    }
    fig = metrics.score(rep)["models"]["seasonal-naive-day"]
    assert fig["coverage"] == pytest.approx(np.mean(rep.actual % 2 == 0))


def _seasonal_hourly(days: int, noise: float, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = days * 24
    ts = MONDAY + np.arange(n, dtype=np.int64) * 3_600_000
    k = np.arange(n)
    weekend = ((k // 24) % 7 >= 5).astype(float)
    y = 100 + 40 * np.sin(2 * np.pi * k / 24) + 30 * weekend + rng.normal(0, noise, n)
    return ts, y


def test_mstl_arima_and_lightgbm_beat_the_seasonal_naive_on_a_seasonal_series():
    ts, y = _seasonal_hourly(23, noise=5.0)
    h = HORIZONS["day-ahead"]
    s = to_points(ts, y, 3_600_000, h.point_ms)
    rep = replay(
        s,
        h,
        [SeasonalNaive(1), MstlArima(window_days=15, order=(1, 0, 0)), LightGbmPeer(h.points, rounds=60)],
        2,
    )
    m = metrics.score(rep)["models"]
    assert m["mstl-arima"]["mase"] < 0.9
    assert m["lightgbm"]["mase"] < 0.9
