"""Evaluate models on one series over the horizons: resample, replay at rolling origins, score on common points.

``model_factories`` builds fresh models per horizon (models keep state across origins): each takes the horizon
and returns a list of :class:`~.protocol.OriginForecaster`. The peers (:func:`~.peers.standard_peers`) always
run, so the naive that scales MASE is there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from streams.analytics.evaluation.metrics import SCALE_NAIVE, score
from streams.analytics.evaluation.peers import standard_peers
from streams.analytics.evaluation.protocol import HORIZONS, EvalHorizon, OriginForecaster, replay, to_points

ModelFactory = Callable[[EvalHorizon], list[OriginForecaster]]

PROTOCOL = (
    "rolling origin, no look-ahead: at each origin every model sees only the points before it; origins are "
    "non-overlapping blocks in the last eval_days (hour-ahead every hour, intra-day every 4 h for 8 x 30 min, "
    "day-ahead at 00:00 UTC for 24 x 60 min); all models scored on the same points (actual and every forecast "
    "known); MASE scaled by persistence (hour-ahead), seasonal naive one day (day-ahead), the better of the two "
    "(intra-day); MAPE over points with |actual| >= 10 % of the mean; coverage = share of actuals in [P10, P90]"
)


def evaluate_series(
    ts: np.ndarray,
    values: np.ndarray,
    step_ms: int,
    eval_days: int,
    horizons: Iterable[str] = tuple(HORIZONS),
    model_factories: Iterable[ModelFactory] = (),
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Figures per horizon (see :func:`~.metrics.score`) of the peers and the factories' models on a series of
    step energies (Wh per step, step starts ``ts`` in UTC epoch ms, regular, NaN = missing).

    ``only``: model names to run (the naives that scale MASE always run)."""
    factories = list(model_factories)
    out: dict[str, Any] = {}
    for name in horizons:
        h = HORIZONS[name]
        t0 = time.perf_counter()
        series = to_points(ts, values, step_ms, h.point_ms)
        models: list[OriginForecaster] = standard_peers(h.points)
        for f in factories:
            models.extend(f(h))
        if only is not None:
            keep = set(only) | set(SCALE_NAIVE[name])
            models = [m for m in models if m.name in keep]
        res = score(replay(series, h, models, eval_days))
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = res
    return out
