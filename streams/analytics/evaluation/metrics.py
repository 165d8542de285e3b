"""Scores of one model on the common points of a :class:`~.protocol.Replay`.

* ``mae`` - mean absolute error (Wh per point);
* ``mase`` - MAE divided by the MAE of the horizon's naive on the same points (:data:`SCALE_NAIVE`):
  persistence (the last known point) for hour-ahead, seasonal naive (same point a day earlier) for day-ahead, and
  for intra-day the better (lower MAE) of the two on these points, so the scale never flatters a model;
* ``mape`` - mean absolute percentage error (fraction) over points whose actual is at least
  :data:`MAPE_FLOOR` x the mean absolute actual (``mape_share``: the share of points kept; PV nights drop out);
* ``pinball`` - mean pinball loss over the quantiles a model gives (Wh), ``coverage`` - the share of actuals in
  [P10, P90] (nominal 0.8), ``p50_mae`` - the MAE of its P50; all three over the points where the model issued
  quantiles (``quantile_share`` of the scored points; a conformal model issues none until calibrated).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from streams.analytics.evaluation.protocol import Replay

MAPE_FLOOR = 0.1
SCALE_NAIVE: dict[str, tuple[str, ...]] = {
    "hour-ahead": ("persistence",),
    "intra-day": ("persistence", "seasonal-naive-day"),
    "day-ahead": ("seasonal-naive-day",),
}


def mae(actual: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(actual - pred))) if actual.size else math.nan


def mape_away_from_zero(actual: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(MAPE over points with |actual| >= MAPE_FLOOR x mean |actual|, share of points kept)."""
    if actual.size == 0:
        return math.nan, 0.0
    keep = np.abs(actual) >= MAPE_FLOOR * float(np.mean(np.abs(actual)))
    if not keep.any():
        return math.nan, 0.0
    return float(np.mean(np.abs((actual[keep] - pred[keep]) / actual[keep]))), float(keep.mean())


def pinball(actual: np.ndarray, pred_q: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of the ``q`` quantile forecast (Wh)."""
    d = actual - pred_q
    return float(np.mean(np.maximum(q * d, (q - 1.0) * d)))


def naive_scale(replay: Replay, mask: np.ndarray) -> tuple[str, float]:
    """(name, MAE) of the naive that scales MASE for this horizon (see the module docstring)."""
    a = replay.actual[mask]
    cands = [
        (n, mae(a, replay.point[n][mask])) for n in SCALE_NAIVE[replay.horizon.name] if n in replay.point
    ]
    if not cands:
        raise ValueError(
            f"replay of {replay.horizon.name} lacks its naive {SCALE_NAIVE[replay.horizon.name]}"
        )
    return min(cands, key=lambda c: c[1])


def score(replay: Replay) -> dict[str, Any]:
    """Every model's figures on the replay's common points, with the protocol facts needed to read them."""
    mask = replay.common_mask()
    a = replay.actual[mask]
    scale_name, scale = naive_scale(replay, mask)
    models: dict[str, dict[str, float]] = {}
    for name, p in replay.point.items():
        e = mae(a, p[mask])
        mp, share = mape_away_from_zero(a, p[mask])
        fig: dict[str, float] = {
            "mae": e,
            "mase": e / scale if scale else math.nan,
            "mape": mp,
            "mape_share": share,
        }
        qs = replay.quantiles.get(name)
        known = np.all([~np.isnan(v[mask]) for v in qs.values()], axis=0) if qs else None
        if known is not None and known.any():
            aq = a[known]
            fig["quantile_share"] = float(known.mean())
            fig["pinball"] = float(np.mean([pinball(aq, v[mask][known], q) for q, v in qs.items()]))
            if 0.1 in qs and 0.9 in qs:
                fig["coverage"] = float(np.mean((aq >= qs[0.1][mask][known]) & (aq <= qs[0.9][mask][known])))
            if 0.5 in qs:
                fig["p50_mae"] = mae(aq, qs[0.5][mask][known])
        models[name] = fig
    return {
        "horizon": replay.horizon.name,
        "point_minutes": replay.horizon.point_minutes,
        "points": int(mask.sum()),
        "origins": int(replay.actual.shape[0]),
        "mase_scale": scale_name,
        "mean_actual": float(np.mean(a)) if a.size else math.nan,
        "models": models,
    }
