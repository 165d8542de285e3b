"""PV degradation: performance ratio against expected output and year-on-year degradation rate Rd.

Pipeline (RdTools-style year-on-year method):
1. per slot PR = actual / expected (both W; expected from measured irradiance or clear-sky, see ``pv_model``);
2. slot filters: low light (expected < ``min_expected_share`` of the DC rating), outages (actual below
   ``outage_ratio`` x expected), clipping (actual or expected >= ``clip_share`` x AC limit), absurd ratios;
3. daily PR = energy-weighted ratio over the kept slots (days with too few slots dropped);
4. clear-sky mode only: keep clear days (daily PR >= ``clear_day_share`` x a rolling 95th percentile), since a
   clear-sky reference also "sees" clouds;
5. year-on-year: every kept day paired with the kept day 365 +- ``pair_tolerance_days`` later; rate per pair
   ``(PR2 / PR1 - 1) x 365 / days apart`` in %/year; ``Rd`` = median; confidence interval by bootstrap of the
   median over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY_MS = 86_400_000


@dataclass(frozen=True)
class DegradationConfig:
    min_expected_share: float = 0.15
    outage_ratio: float = 0.05
    max_ratio: float = 2.0
    clip_share: float = 0.98
    min_slots_per_day: int = 8
    clear_sky: bool = False
    clear_day_share: float = 0.93
    clear_window_days: int = 31
    pair_tolerance_days: int = 3
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class DegradationEstimate:
    """``rd_pct_per_year``: median year-on-year change of PR, %/year (negative = losing output).
    ``ci_low``/``ci_high``: bootstrap confidence interval bounds, %/year. ``pr_latest``: median daily PR of the last
    30 kept days (dimensionless), a multiplier for forecasts."""

    rd_pct_per_year: float
    ci_low: float
    ci_high: float
    confidence: float
    pairs: int
    days_used: int
    slots_used: int
    slots_total: int
    pr_latest: float


def slot_mask(
    actual_w: np.ndarray,
    expected_w: np.ndarray,
    dc_capacity_w: float,
    ac_limit_w: float | None,
    cfg: DegradationConfig,
) -> np.ndarray:
    """Boolean mask of slots usable for PR (see module doc, step 2). NaN actuals are unusable."""
    actual = np.asarray(actual_w, dtype=float)
    expected = np.asarray(expected_w, dtype=float)
    ok = np.isfinite(actual) & np.isfinite(expected) & (expected >= cfg.min_expected_share * dc_capacity_w)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(expected > 0, actual / expected, np.nan)
    ok &= (ratio > cfg.outage_ratio) & (ratio < cfg.max_ratio)
    if ac_limit_w is not None:
        limit = cfg.clip_share * ac_limit_w
        ok &= (actual < limit) & (expected < limit)
    return ok


def daily_pr(
    times_ms: np.ndarray,
    actual_w: np.ndarray,
    expected_w: np.ndarray,
    mask: np.ndarray,
    cfg: DegradationConfig,
) -> pd.Series:
    """Energy-weighted daily performance ratio over masked slots, indexed by UTC day number."""
    day = np.asarray(times_ms, dtype=np.int64) // DAY_MS
    frame = pd.DataFrame(
        {"day": day[mask], "a": np.asarray(actual_w)[mask], "e": np.asarray(expected_w)[mask]}
    )
    g = frame.groupby("day").agg(a=("a", "sum"), e=("e", "sum"), n=("a", "size"))
    g = g[g["n"] >= cfg.min_slots_per_day]
    pr = g["a"] / g["e"]
    if cfg.clear_sky and len(pr):
        full = pr.reindex(range(int(pr.index.min()), int(pr.index.max()) + 1))
        ref = full.rolling(cfg.clear_window_days, center=True, min_periods=5).quantile(0.95)
        pr = pr[pr >= cfg.clear_day_share * ref.reindex(pr.index)]
    return pr


def yoy_rates(pr: pd.Series, tolerance_days: int) -> np.ndarray:
    """Year-on-year rates (%/year): each day paired with the nearest kept day 365 +- tolerance days later."""
    days = pr.index.to_numpy(dtype=np.int64)
    values = pr.to_numpy(dtype=float)
    rates = []
    for i, d in enumerate(days):
        lo, hi = np.searchsorted(days, [d + 365 - tolerance_days, d + 365 + tolerance_days + 1])
        if lo >= hi:
            continue
        j = lo + int(np.argmin(np.abs(days[lo:hi] - d - 365)))
        rates.append((values[j] / values[i] - 1.0) * 100.0 * 365.0 / (days[j] - d))
    return np.asarray(rates)


def estimate_degradation(
    times_ms: np.ndarray,
    actual_w: np.ndarray,
    expected_w: np.ndarray,
    dc_capacity_w: float,
    ac_limit_w: float | None = None,
    cfg: DegradationConfig | None = None,
) -> DegradationEstimate:
    """Year-on-year Rd with a bootstrap confidence interval. Needs more than one year of data."""
    cfg = cfg or DegradationConfig()
    mask = slot_mask(actual_w, expected_w, dc_capacity_w, ac_limit_w, cfg)
    pr = daily_pr(times_ms, actual_w, expected_w, mask, cfg)
    rates = yoy_rates(pr, cfg.pair_tolerance_days)
    if len(rates) < 10:
        raise ValueError(f"too few year-on-year pairs ({len(rates)}): need more than a year of usable data")
    rng = np.random.default_rng(cfg.seed)
    boots = np.median(rng.choice(rates, size=(cfg.bootstrap, len(rates)), replace=True), axis=1)
    alpha = (1.0 - cfg.confidence) / 2.0
    return DegradationEstimate(
        rd_pct_per_year=float(np.median(rates)),
        ci_low=float(np.quantile(boots, alpha)),
        ci_high=float(np.quantile(boots, 1.0 - alpha)),
        confidence=cfg.confidence,
        pairs=len(rates),
        days_used=len(pr),
        slots_used=int(mask.sum()),
        slots_total=len(mask),
        pr_latest=float(pr.iloc[-30:].median()),
    )
