"""Offline scoring of the online forecaster and the baselines on a series, without Kafka.

The forecast replay uses exactly the streaming code path: for every step, first (at each issue time) the
forecaster issues a profile from what it has seen so far, then it observes that step. Forecasts are issued on
non-overlapping blocks of the horizon's span (day-ahead at 00:00 UTC for the next 24 h, intra-day every 4 h,
hour-ahead every hour) and scored at the horizon's profile granularity after ``warmup_days``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streams.analytics import accuracy
from streams.analytics.baselines import SLOTS_PER_DAY, BaselineConfig, backtest, day_kinds
from streams.analytics.forecasting import DAY_MS, HORIZONS, EntityForecaster
from streams.analytics.weather import FIELDS as WEATHER_FIELDS
from streams.analytics.weather import WeatherSeries


@dataclass(frozen=True)
class Series:
    """A regular series: step starts ``ts`` (UTC epoch ms), ``values`` (NaN = missing), optional event flags."""

    ts: np.ndarray
    values: np.ndarray
    step_ms: int
    events: np.ndarray | None = None


def _to_epoch_ms(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype="int64")
        return v * 1000 if v.size and np.nanmax(np.abs(v)) < 10**11 else v  # seconds -> ms
    dt = pd.to_datetime(col, utc=True)
    return (dt.astype("int64") // 10**6).to_numpy()


def load_csv(path: str | Path) -> Series:
    """Read ``timestamp,value[,event]`` (header optional; ISO time or epoch s/ms) into a regular series."""
    df = pd.read_csv(path)
    if df.columns[0].strip().lower() not in ("timestamp", "ts", "time", "datetime"):
        df = pd.read_csv(path, header=None)
    cols = list(df.columns)
    ts = _to_epoch_ms(df[cols[0]])
    values = pd.to_numeric(df[cols[1]], errors="coerce").to_numpy(dtype=float)
    events = df[cols[2]].astype(bool).to_numpy() if len(cols) > 2 else None
    return regularise(ts, values, events)


def load_weather_csv(path: str | Path) -> WeatherSeries:
    """Read a site's weather ``timestamp,<field>[,<field>...]`` (header required; fields of
    :data:`~streams.analytics.weather.FIELDS`: ``temp_c``, ``ghi_w_m2``, ``ghi_clear_w_m2``) into a regular
    :class:`~streams.analytics.weather.WeatherSeries`; errors name the file and the column."""
    df = pd.read_csv(path)
    cols = [c.strip() for c in df.columns]
    unknown = [c for c in cols[1:] if c not in WEATHER_FIELDS]
    if cols[0].lower() not in ("timestamp", "ts", "time", "datetime") or unknown or len(cols) < 2:
        raise ValueError(
            f"{path}: weather columns must be timestamp followed by any of {', '.join(WEATHER_FIELDS)}; "
            f"got {', '.join(cols)}"
        )
    ts = _to_epoch_ms(df[df.columns[0]])
    fields = {}
    grid = None
    for raw, name in zip(df.columns[1:], cols[1:], strict=True):
        g = regularise(ts, pd.to_numeric(df[raw], errors="coerce").to_numpy(dtype=float))
        grid, fields[name] = g, g.values
    try:
        return WeatherSeries(grid.ts, grid.step_ms, fields)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def regularise(ts: np.ndarray, values: np.ndarray, events: np.ndarray | None = None) -> Series:
    """Sort, find the step (median spacing) and put the values on a gap-free grid (NaN where missing)."""
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    if ts.size < 2:
        raise ValueError("need at least two rows")
    step = int(np.median(np.diff(ts)))
    if step <= 0 or DAY_MS % step:
        raise ValueError(f"resolution {step} ms does not divide a day")
    start = ts[0] - ts[0] % step
    idx = (ts - start) // step
    grid = np.full(int(idx[-1]) + 1, np.nan)
    grid[idx] = values
    ev = None
    if events is not None:
        ev = np.zeros(grid.size, dtype=bool)
        ev[idx] = events[order]
    return Series(start + np.arange(grid.size, dtype=np.int64) * step, grid, step, ev)


def evaluate_forecast(
    series: Series, horizon: str = "day-ahead", model: str = "linear", warmup_days: int = 14
) -> dict[str, Any]:
    """Replay ``series`` through an :class:`EntityForecaster`; MAE, NMAE, MAPE, MASE vs seasonal naive."""
    h = HORIZONS[horizon]
    if h.point_ms % series.step_ms:
        raise ValueError(
            f"{horizon} points ({h.point_ms} ms) are not a multiple of the step {series.step_ms} ms"
        )
    fc = EntityForecaster(series.step_ms, model=model)
    start_scoring = int(series.ts[0]) + warmup_days * DAY_MS
    per = h.point_ms // series.step_ms
    starts, preds, naives = [], [], []
    for t, v in zip(series.ts.tolist(), series.values.tolist(), strict=True):
        if t % h.span_ms == 0 and t >= start_scoring:
            for p, nv in zip(fc.forecast_points(t, h), fc.naive_points(t, h), strict=True):
                starts.append(p["ts"])
                preds.append(p["value"])
                naives.append(nv)
        fc.observe(t, v)
    t0 = int(series.ts[0])
    actual = []
    for s in starts:
        i = (s - t0) // series.step_ms
        chunk = series.values[i : i + per]
        actual.append(float(chunk.sum()) if chunk.size == per and not np.isnan(chunk).any() else math.nan)
    a, p, n = np.array(actual), np.array(preds), np.array(naives)
    return {
        "horizon": horizon,
        "model": model,
        "points": int(np.count_nonzero(~np.isnan(a) & ~np.isnan(n))),
        "step_minutes": series.step_ms // 60_000,
        "mae": accuracy.mae(a, p),
        "nmae": accuracy.nmae(a, p),
        "mape": accuracy.mape(a, p),
        "mase": accuracy.mase(a, p, n),
        "naive_mae": accuracy.mae(a, n),
        "naive_mape": accuracy.mape(a, n),
    }


def to_day_grid(series: Series) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(load[day, 96 slots], day start ms, event-day flags) of a series resampled to 15 minutes (mean)."""
    idx = pd.to_datetime(series.ts, unit="ms", utc=True)
    s = pd.Series(series.values, index=idx)
    q = s.resample("15min").mean() if series.step_ms < 900_000 else s.resample("15min").ffill(limit=None)
    first = q.index[0].normalize()
    full = pd.date_range(
        first, q.index[-1].normalize() + pd.Timedelta(days=1), freq="15min", inclusive="left"
    )
    q = q.reindex(full)
    load = q.to_numpy(dtype=float).reshape(-1, SLOTS_PER_DAY)
    day_ms = (full[::SLOTS_PER_DAY].astype("int64") // 10**6).to_numpy()
    ev = None
    if series.events is not None:
        e = (
            pd.Series(series.events, index=idx)
            .astype(float)
            .resample("1D")
            .max()
            .reindex(full[::SLOTS_PER_DAY])
        )
        ev = e.fillna(0).to_numpy() > 0
    return load, day_ms, ev


def hourly(x: np.ndarray) -> np.ndarray:
    """(days, 96) quarter-hour means -> (days, 24) hourly means."""
    return x.reshape(x.shape[0], 24, 4).mean(axis=2)


def evaluate_baseline(
    load_kw: np.ndarray,
    day_ms: np.ndarray,
    event_days: np.ndarray | None,
    cfg: BaselineConfig,
    warmup_days: int = 14,
) -> dict[str, Any]:
    """Hourly CV(RMSE) and NMBE of the baseline against actual load on non-event days after warm-up."""
    kind = day_kinds(day_ms)
    excluded = event_days if event_days is not None else np.zeros(load_kw.shape[0], dtype=bool)
    bl = backtest(load_kw, kind, excluded, cfg, warmup_days)
    keep = ~excluded
    keep[:warmup_days] = False
    a, b = hourly(load_kw[keep]), hourly(bl[keep])
    return {
        "method": cfg.method,
        "params": cfg.params,
        "days": int(keep.sum()),
        "cv_rmse": accuracy.cv_rmse(a, b),
        "nmbe": accuracy.nmbe(a, b),
        "mae": accuracy.mae(a, b),
    }
