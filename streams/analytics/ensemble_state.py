"""One :class:`~streams.analytics.ensemble.EnsembleForecaster` as JSON that cannot execute code, and back.

The forecasts stage with ``FORECAST_MODEL=ensemble`` keeps its ensembles in the partition store
(:mod:`streams.analytics.ensemble_stream`). :func:`dump_ensemble` writes everything the forecaster learnt - the
kept history, the River members (:class:`~streams.analytics.forecast_state.ForecasterState`), the error weights
per feature cell, the conformal residuals per lead bucket, the pending member forecasts, the LightGBM member as
LightGBM's own model text (parsed by LightGBM, never executed) - and :func:`load_ensemble` rebuilds a forecaster
that forecasts and keeps learning bit for bit like the original (float series as packed little-endian doubles,
see :data:`~streams.analytics.forecast_state.PackedFloats`).

The attribute sets of the classes are checked, so a new attribute fails loudly in the tests instead of being lost.
"""

from __future__ import annotations

from collections import deque

import lightgbm as lgb
import numpy as np

from streams.analytics.conformal import ConformalQuantiles
from streams.analytics.ensemble import EnsembleForecaster, _Pending
from streams.analytics.ensemble_weights import ErrorWeights
from streams.analytics.forecast_state import (
    ForecasterState,
    PackedFloats,
    _State,
    dump_forecaster,
    load_forecaster,
)
from streams.analytics.weather import WeatherSeries

ENSEMBLE_ATTRIBUTES = frozenset(
    {
        "point_ms", "points", "members", "history_days", "retrain_days", "gbm_rounds", "weight_power",
        "median_point", "weights", "conformal", "per_day", "linear", "profile", "gbm", "hist", "last_ts",
        "seen", "fitted_at", "pending", "nonnegative", "level", "weather",
    }
)  # fmt: skip
WEIGHTS_ATTRIBUTES = frozenset({"members", "alpha", "power", "min_count", "err", "count"})
CONFORMAL_ATTRIBUTES = frozenset({"quantiles", "window", "min_count", "floor", "residuals"})


class EnsembleState(_State):
    point_ms: int
    points: int
    members: list[str]
    history_days: int
    retrain_days: int
    gbm_rounds: int
    weight_power: float
    median_point: bool
    weights_alpha: float
    weights_min_count: int
    cells: list[list[int]]  # feature cells: (lead bucket,) or (lead bucket, weekend, block)
    cell_counts: list[int]
    cell_errors: PackedFloats  # per cell (in order) the EW absolute error of every member, Wh
    quantiles: list[float]
    conformal_window: int
    conformal_min_count: int
    conformal_floor: float
    residuals: dict[int, PackedFloats]
    linear: ForecasterState
    profile: ForecasterState
    hist: PackedFloats
    last_ts: int | None
    seen: int
    fitted_at: int | None
    # forecast points not scored yet, in parallel: target start and issue time (ms), point and level (Wh), and
    # the member forecasts (Wh, members per point, points in order)
    pending_ts: list[int]
    pending_issued_at: list[int]
    pending_point: PackedFloats
    pending_level: PackedFloats
    pending_preds: PackedFloats
    nonnegative: bool
    level: float
    booster: str | None = None  # LightGBM model text of the lightgbm member (None before its first fit)
    booster_fitted_len: int = 0


def _check(obj: object, known: frozenset[str]) -> None:
    attrs = frozenset(vars(obj))
    if attrs != known:
        raise TypeError(
            f"{type(obj).__name__} attributes changed (new {sorted(attrs - known)}, gone "
            f"{sorted(known - attrs)}): update streams/analytics/ensemble_state.py"
        )


def dump_ensemble(f: EnsembleForecaster) -> EnsembleState:
    """The forecaster's state; its ``weather`` is an input, not state (:func:`load_ensemble` takes it again)."""
    for obj, known in (
        (f, ENSEMBLE_ATTRIBUTES),
        (f.weights, WEIGHTS_ATTRIBUTES),
        (f.conformal, CONFORMAL_ATTRIBUTES),
    ):
        _check(obj, known)
    w, c = f.weights, f.conformal
    return EnsembleState(
        point_ms=f.point_ms,
        points=f.points,
        members=list(f.members),
        history_days=f.history_days,
        retrain_days=f.retrain_days,
        gbm_rounds=f.gbm_rounds,
        weight_power=f.weight_power,
        median_point=f.median_point,
        weights_alpha=w.alpha,
        weights_min_count=w.min_count,
        cells=[list(k) for k in w.err],
        cell_counts=[w.count[k] for k in w.err],
        cell_errors=[float(v) for e in w.err.values() for v in e],
        quantiles=list(c.quantiles),
        conformal_window=c.window,
        conformal_min_count=c.min_count,
        conformal_floor=c.floor,
        residuals={b: list(r) for b, r in c.residuals.items()},
        linear=dump_forecaster(f.linear),
        profile=dump_forecaster(f.profile),
        hist=list(f.hist),
        last_ts=f.last_ts,
        seen=f.seen,
        fitted_at=f.fitted_at,
        pending_ts=list(f.pending),
        pending_issued_at=[p.issued_at for p in f.pending.values()],
        pending_point=[p.point for p in f.pending.values()],
        pending_level=[p.level for p in f.pending.values()],
        pending_preds=[float(v) for p in f.pending.values() for v in p.preds],
        nonnegative=f.nonnegative,
        level=f.level,
        booster=None if f.gbm.booster is None else f.gbm.booster.model_to_string(),
        booster_fitted_len=f.gbm.fitted_len,
    )


def load_ensemble(s: EnsembleState, weather: WeatherSeries | None = None) -> EnsembleForecaster:
    """The forecaster in exactly the stored state, reading ``weather`` (raises ValueError on inconsistent
    sizes)."""
    f = EnsembleForecaster(
        s.point_ms,
        s.points,
        members=tuple(s.members),
        history_days=s.history_days,
        retrain_days=s.retrain_days,
        gbm_rounds=s.gbm_rounds,
        weight_power=s.weight_power,
        median_point=s.median_point,
        weather=weather,
        conformal=ConformalQuantiles(
            quantiles=tuple(s.quantiles), window=s.conformal_window, min_count=s.conformal_min_count,
            floor=s.conformal_floor,
        ),
    )  # fmt: skip
    n = len(f.members)
    f.weights = ErrorWeights(
        f.members, alpha=s.weights_alpha, power=s.weight_power, min_count=s.weights_min_count
    )
    errors = np.asarray(s.cell_errors, dtype=float)
    if errors.size != n * len(s.cells) or len(s.cell_counts) != len(s.cells):
        raise ValueError(f"{errors.size} weight errors, {len(s.cell_counts)} counts for {len(s.cells)} cells")
    for i, (cell, count) in enumerate(zip(s.cells, s.cell_counts, strict=True)):
        if len(cell) not in (1, 3):
            raise ValueError(f"weight cell {cell} is neither (lead,) nor (lead, weekend, block)")
        f.weights.err[tuple(cell)] = errors[i * n : (i + 1) * n].copy()
        f.weights.count[tuple(cell)] = count
    for b, r in s.residuals.items():
        if len(r) > s.conformal_window:
            raise ValueError(f"{len(r)} residuals of lead bucket {b}, the window is {s.conformal_window}")
        f.conformal.residuals[b] = deque(r, maxlen=s.conformal_window)
    f.linear, f.profile = load_forecaster(s.linear, weather), load_forecaster(s.profile)
    if len(s.hist) > f.hist.maxlen:
        raise ValueError(f"history of {len(s.hist)} points, at most {f.hist.maxlen} kept")
    f.hist = deque(s.hist, maxlen=f.hist.maxlen)
    f.last_ts, f.seen, f.fitted_at = s.last_ts, s.seen, s.fitted_at
    preds = np.asarray(s.pending_preds, dtype=float)
    k = len(s.pending_ts)
    if (
        preds.size != k * n
        or not len(s.pending_issued_at) == len(s.pending_point) == len(s.pending_level) == k
    ):
        raise ValueError(f"inconsistent pending forecasts: {k} points, {preds.size} member forecasts")
    for i, t in enumerate(s.pending_ts):
        f.pending[t] = _Pending(
            s.pending_issued_at[i], preds[i * n : (i + 1) * n].copy(), s.pending_point[i], s.pending_level[i]
        )
    f.nonnegative, f.level = s.nonnegative, s.level
    if s.booster is not None:
        f.gbm.booster = lgb.Booster(model_str=s.booster)
    f.gbm.fitted_len = s.booster_fitted_len
    return f
