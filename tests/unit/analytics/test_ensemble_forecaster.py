"""The probabilistic ensemble: feature-dependent weights, conformal quantiles, one code path with the harness."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.conformal import ConformalQuantiles
from streams.analytics.ensemble import EnsembleForecaster
from streams.analytics.ensemble_weights import ErrorWeights, context, lead_bucket
from streams.analytics.evaluation import metrics
from streams.analytics.evaluation.online_models import Ensemble
from streams.analytics.evaluation.peers import Persistence
from streams.analytics.evaluation.protocol import HORIZONS, replay, to_points

MONDAY = 1_700_438_400_000  # 2023-11-20 00:00 UTC
HOUR = 3_600_000


def test_weights_follow_the_recent_errors_of_each_feature_cell():
    w = ErrorWeights(("a", "b"), power=2.0, min_count=3)
    both = np.array([True, True])
    weekday_morning = context(MONDAY + 8 * HOUR, HOUR)
    saturday_morning = context(MONDAY + 5 * 86_400_000 + 8 * HOUR, HOUR)
    assert weekday_morning != saturday_morning and weekday_morning[0] == lead_bucket(HOUR) == 1
    np.testing.assert_allclose(w.weights(weekday_morning, both), [0.5, 0.5])  # nothing learnt: equal
    for _ in range(5):
        w.learn(weekday_morning, 10.0, np.array([11.0, 14.0]))  # a misses by 1, b by 4
        w.learn(saturday_morning, 10.0, np.array([13.0, 11.0]))  # b is better on Saturdays
    np.testing.assert_allclose(w.weights(weekday_morning, both), [16 / 17, 1 / 17])  # error ** -2
    assert w.weights(saturday_morning, both)[1] == pytest.approx(9 / 10)
    # a member without a forecast drops out; an unseen cell of the same lead uses the lead bucket's errors
    np.testing.assert_allclose(w.weights(weekday_morning, np.array([False, True])), [0.0, 1.0])
    sunday_night = context(MONDAY + 6 * 86_400_000 + 22 * HOUR, HOUR)
    inv = w.err[(weekday_morning[0],)] ** -2.0
    np.testing.assert_allclose(w.weights(sunday_night, both), inv / inv.sum())


def test_conformal_quantiles_cover_at_their_nominal_rate_and_scale_with_the_point():
    rng = np.random.default_rng(0)
    c = ConformalQuantiles(window=400, min_count=30)
    assert np.isnan(c.predict(0, 100.0, 100.0, True)[0.1])
    for _ in range(400):
        p = rng.uniform(50, 150)
        c.learn(0, p * (1 + rng.normal(0, 0.2)), p, 100.0)
    hits = 0
    for _ in range(600):
        p = rng.uniform(50, 150)
        q = c.predict(0, p, 100.0, True)
        hits += q[0.1] <= p * (1 + rng.normal(0, 0.2)) <= q[0.9]
    assert 0.73 < hits / 600 < 0.87
    q0 = c.predict(0, 0.0, 100.0, True)
    assert q0[0.1] == 0.0 and q0[0.9] < 0.1 * c.predict(0, 150.0, 100.0, True)[0.9]  # a night point: tight


def _weekly(days: int) -> tuple[np.ndarray, np.ndarray]:
    """Hourly energies that repeat every week exactly (a weekday and a weekend shape)."""
    ts = MONDAY + np.arange(days * 24, dtype=np.int64) * HOUR
    k = np.arange(ts.size)
    hour, weekday = k % 24, (k // 24) % 7
    return ts, 100 + 50 * np.sin(2 * np.pi * hour / 24) + 40 * (weekday >= 5) + 7 * (weekday == 2)


def test_ensemble_learns_to_trust_the_exact_member_and_issues_ordered_quantiles():
    ts, y = _weekly(30)
    f = EnsembleForecaster(HOUR, 24, gbm_rounds=20)
    for t, v in zip(ts[: 29 * 24].tolist(), y[: 29 * 24].tolist(), strict=True):
        if t % 86_400_000 == 0 and t > ts[0]:
            if f.retrain_due():
                f.retrain()
            f.forecast(t)  # issued every day like the stage: the outcomes teach weights and residuals
        f.observe(t, v)
    out = f.forecast(int(ts[29 * 24]))
    week = f.members.index("seasonal-week")
    assert out.weights[:, week].min() > 0.99  # the weekly member is exact, the others are not
    np.testing.assert_allclose(out.point, y[29 * 24 :], rtol=1e-6)
    q10, q50, q90 = (out.quantiles[q][2:] for q in (0.1, 0.5, 0.9))  # leads < 2 h: too few residuals yet
    assert not np.isnan(q10).any() and np.all(q10 <= q50) and np.all(q50 <= q90)


def test_the_harness_replays_exactly_the_streaming_calls():
    rng = np.random.default_rng(2)
    ts, y = _weekly(22)
    y = y * rng.lognormal(0, 0.1, y.size)
    h = HORIZONS["intra-day"]  # 8 x 30 min every 4 h
    ts30 = MONDAY + np.arange(y.size * 2, dtype=np.int64) * 1_800_000
    s = to_points(ts30, np.repeat(y / 2, 2), 1_800_000, h.point_ms)
    options = {"gbm_rounds": 20, "history_days": 30}
    rep = replay(s, h, [Ensemble(h, shadow_days=10, options=options), Persistence()], 2)
    # the stage's way: observe every closed point, retrain when due, issue at every 4-hour boundary
    f = EnsembleForecaster(h.point_ms, h.points, **options)
    first_shadow = int(s.ts[-1]) + h.point_ms - 12 * 86_400_000  # 2 scored + 10 shadow days
    issued = {}
    for i, (t, v) in enumerate(zip(s.ts.tolist(), s.y.tolist(), strict=True)):
        if t % (4 * HOUR) == 0 and t >= first_shadow and i > 0:
            if f.retrain_due():
                f.retrain()
            issued[t] = f.forecast(t)
        f.observe(t, v)
    for o, start in enumerate(rep.target_ts[:, 0].tolist()):
        np.testing.assert_array_equal(rep.point["ensemble"][o], issued[start].point)
        np.testing.assert_array_equal(rep.quantiles["ensemble"][0.9][o], issued[start].quantiles[0.9])
    fig = metrics.score(rep)["models"]["ensemble"]
    assert fig["mase"] < 1 and 0.5 < fig["coverage"] <= 1.0
