"""Customer baseline load (CBL) per prosumer and 15-minute slot: X-of-Y, averaging, comparative day, adjustment.

Load history is a 2-D array ``load_kw[day, slot]`` (mean net power per 15-minute slot, kW; NaN when unknown) on
a grid of whole days of 96 slots starting at midnight UTC plus a fixed ``utc_offset_minutes`` (DST is not
modelled). ``kind[day]`` is the day type (0 = working day, 1 = weekend/holiday) and ``excluded[day]`` marks event
days (flexibility orders) that never enter a look-back.

Methods (``BaselineConfig.method``):

* ``HIGH_X_OF_Y``: of the last Y similar non-event days, the X with the highest mean load, averaged per slot.
* ``MID_X_OF_Y``: the X middle days by mean load (drops the highest and lowest equally).
* ``AVERAGE_Y``: all Y days averaged (``y=10`` is the plain 10-of-10 reference).
* ``COMPARATIVE_DAY``: of the last Y similar days, the ``k`` whose load in the hours before the slot is closest
  (RMSE) to the target day's, averaged (falls back to ``AVERAGE_Y`` without same-day data).

Same-day adjustment (``adjust``: none | additive | multiplicative): for slot ``s`` the window is the
``adjust_width_slots`` slots ending ``adjust_lead_slots`` before ``s`` (rolling, so each slot's baseline can be
published ``adjust_lead_slots`` ahead of it; pass ``anchor_slot`` to use one window before an event start for all
slots, as in DR settlement). Additive: ``+ (actual - baseline)`` over the window, capped to ``±cap * baseline`` (``cap=inf``: uncapped);
multiplicative: ``* actual/baseline`` clipped to ``[1-cap, 1+cap]``; either change times ``weight`` (a shrunk,
partial adjustment).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SLOTS_PER_DAY = 96
SLOT_MS = 900_000
DAY_MS = 86_400_000
METHODS = ("HIGH_X_OF_Y", "MID_X_OF_Y", "AVERAGE_Y", "COMPARATIVE_DAY")
ADJUSTMENTS = ("none", "additive", "multiplicative")


@dataclass(frozen=True)
class BaselineConfig:
    method: str = "AVERAGE_Y"
    x: int = 10
    y: int = 10
    max_lookback_days: int = 60
    adjust: str = "none"
    adjust_lead_slots: int = 4
    adjust_width_slots: int = 12
    cap: float = 0.2  # math.inf: uncapped
    comparative_k: int = 3
    min_day_coverage: float = 0.9
    weight: float = 1.0  # share of the (capped) adjustment applied: < 1 shrinks it

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown baseline method {self.method!r}; one of {METHODS}")
        if self.adjust not in ADJUSTMENTS:
            raise ValueError(f"unknown adjustment {self.adjust!r}; one of {ADJUSTMENTS}")
        if not 1 <= self.x <= self.y:
            raise ValueError("need 1 <= x <= y")
        if not 0.0 < self.weight <= 1.0:
            raise ValueError(f"adjustment weight must be in (0, 1], got {self.weight}")
        if not self.cap >= 0.0:
            raise ValueError(f"adjustment cap must be >= 0 (inf: uncapped), got {self.cap}")

    @property
    def params(self) -> str:
        """Human/machine readable parameters for ``Baseline.method_params``."""
        p = f"x={self.x},y={self.y},adjust={self.adjust}"
        if self.adjust != "none":
            p += f",cap={self.cap},lead={self.adjust_lead_slots},width={self.adjust_width_slots}"
            if self.weight != 1.0:
                p += f",weight={self.weight}"
        if self.method == "COMPARATIVE_DAY":
            p += f",k={self.comparative_k}"
        return p


#: 10-of-10 average plus half of the uncapped additive deviation over the 12 h ending an hour before the slot.
HALF_ADDITIVE_12H = BaselineConfig(
    "AVERAGE_Y",
    x=10,
    y=10,
    adjust="additive",
    cap=math.inf,
    adjust_lead_slots=4,
    adjust_width_slots=48,
    weight=0.5,
)
#: The former default: 10-of-10 average with a +-20 % capped multiplicative same-day adjustment. It biases household
#: baselines low (median NMBE +2.6 ... +3.5 %, under-crediting their flexibility: streams/analytics/README.md).
MULTIPLICATIVE_20 = BaselineConfig("AVERAGE_Y", x=10, y=10, adjust="multiplicative", cap=0.2)
#: The stage's default, for households and portfolios alike, chosen from the simbench figures
#: (streams/analytics/README.md): unbiased on households (|NMBE| <= 1.5 % for every one scored), the lowest
#: portfolio CV(RMSE) of the adjusted presets on event hours.
RECOMMENDED = HALF_ADDITIVE_12H


@dataclass(frozen=True)
class DayBaseline:
    """Baseline of one day: ``kw`` (adjusted, per slot), ``adjustment_kw`` (included in ``kw``), source days."""

    kw: np.ndarray
    adjustment_kw: np.ndarray
    source_days: list[int]


def day_kinds(day_start_ms: Sequence[int] | np.ndarray, holidays: set[int] | None = None) -> np.ndarray:
    """0 for Monday-Friday, 1 for Saturday, Sunday or a holiday (given as day indices into the grid)."""
    weekday = (np.asarray(day_start_ms, dtype=np.int64) // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday (3)
    kinds = (weekday >= 5).astype(int)
    for h in holidays or ():
        kinds[h] = 1
    return kinds


def candidate_days(load_kw: np.ndarray, d: int, kind: np.ndarray, excluded: np.ndarray, cfg: BaselineConfig):
    """Indices of the last ``y`` similar, non-excluded, sufficiently complete days before day ``d``."""
    out: list[int] = []
    lo = max(0, d - cfg.max_lookback_days)
    for j in range(d - 1, lo - 1, -1):
        if kind[j] != kind[d] or excluded[j]:
            continue
        if np.count_nonzero(~np.isnan(load_kw[j])) < cfg.min_day_coverage * SLOTS_PER_DAY:
            continue
        out.append(j)
        if len(out) == cfg.y:
            break
    return out


def _select(load_kw: np.ndarray, days: list[int], cfg: BaselineConfig) -> list[int]:
    if cfg.method == "AVERAGE_Y" or len(days) <= cfg.x:
        return days
    means = np.nanmean(load_kw[days], axis=1)
    order = [days[i] for i in np.argsort(-means, kind="stable")]  # highest first
    if cfg.method == "HIGH_X_OF_Y":
        return order[: cfg.x]
    drop = len(order) - cfg.x
    return order[drop // 2 : drop // 2 + cfg.x]  # MID_X_OF_Y


def _window_means(x: np.ndarray, cfg: BaselineConfig, anchor_slot: int | None) -> np.ndarray:
    """Mean over the adjustment window of each slot, ignoring NaN, along the last axis of ``x``.

    ``x`` holds two days (previous day + target day, 192 slots); the result has one value per target slot
    (NaN where the window holds no data).
    """
    ok = ~np.isnan(x)
    cs = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(np.where(ok, x, 0.0), axis=-1)], axis=-1)
    cn = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(ok, axis=-1)], axis=-1)
    slots = np.arange(SLOTS_PER_DAY) if anchor_slot is None else np.full(SLOTS_PER_DAY, anchor_slot)
    end = SLOTS_PER_DAY + slots - cfg.adjust_lead_slots
    start = np.maximum(end - cfg.adjust_width_slots, 0)
    n = cn[..., end] - cn[..., start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (cs[..., end] - cs[..., start]) / np.maximum(n, 1), np.nan)


def _two_days(load_kw: np.ndarray, j: int) -> np.ndarray:
    return np.concatenate([load_kw[j - 1] if j > 0 else np.full(SLOTS_PER_DAY, np.nan), load_kw[j]])


def _comparative(load_kw: np.ndarray, days: list[int], d: int, cfg: BaselineConfig) -> np.ndarray | None:
    """Per slot: mean of the k candidate days closest (RMSE) to day d in the window before that slot."""
    if d == 0 or not days:
        return None
    two = _two_days(load_kw, d)
    cand = np.stack([_two_days(load_kw, j) for j in days])
    err = _window_means((cand - two) ** 2, cfg, None)  # (n_candidates, 96)
    if np.all(np.isnan(err)):
        return None
    k = min(cfg.comparative_k, len(days))
    best = np.argsort(np.nan_to_num(err, nan=np.inf), axis=0, kind="stable")[:k]  # (k, 96)
    vals = np.take_along_axis(cand[:, SLOTS_PER_DAY:], best, axis=0)
    with np.errstate(invalid="ignore"):
        return np.nanmean(vals, axis=0)


def day_baseline(
    load_kw: np.ndarray,
    d: int,
    kind: np.ndarray,
    excluded: np.ndarray,
    cfg: BaselineConfig,
    *,
    same_day: bool = True,
    anchor_slot: int | None = None,
) -> DayBaseline | None:
    """Baseline of day ``d`` (all 96 slots) from days before it; None without any usable look-back day.

    ``same_day=False`` gives the unadjusted day-ahead baseline (what is known before the day starts).
    """
    days = candidate_days(load_kw, d, kind, excluded, cfg)
    if not days:
        return None
    if cfg.method == "COMPARATIVE_DAY" and same_day:
        comp = _comparative(load_kw, days, d, cfg)
        base = comp if comp is not None else np.nanmean(load_kw[days], axis=0)
        chosen = days
    else:
        chosen = _select(load_kw, days, cfg)
        base = np.nanmean(load_kw[chosen], axis=0)
    adj = np.zeros(SLOTS_PER_DAY)
    if same_day and cfg.adjust != "none" and d > 0:
        actual = _two_days(load_kw, d)
        ref = np.concatenate(
            [np.nanmean(np.stack([_two_days(load_kw, j)[:SLOTS_PER_DAY] for j in chosen]), 0), base]
        )
        ref = np.where(np.isnan(actual), np.nan, ref)
        actual = np.where(np.isnan(ref), np.nan, actual)
        am = _window_means(actual, cfg, anchor_slot)
        rm = _window_means(ref, cfg, anchor_slot)
        known = ~(np.isnan(am) | np.isnan(rm))
        if cfg.adjust == "additive":
            diff = am - rm
            if not np.isinf(cfg.cap):
                diff = np.clip(diff, -cfg.cap * np.abs(rm), cfg.cap * np.abs(rm))
            adj = np.where(known, diff, 0.0)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.clip(am / rm, 1.0 - cfg.cap, 1.0 + cfg.cap)
            adj = np.where(known & (rm > 0), base * (ratio - 1.0), 0.0)
        adj = cfg.weight * adj
    return DayBaseline(base + adj, adj, chosen)


def baseline_record(
    prosumer_id: str,
    day_start_ms: int,
    slot: int,
    source_dates: list[str],
    bl: DayBaseline,
    cfg: BaselineConfig,
    computed_at: int,
    version: int = 1,
) -> dict[str, Any] | None:
    """Baseline (avro/Baseline.avsc) record of slot ``slot`` (0..95) of a day; None where the baseline is NaN.

    Id ``prosumer/isp_start/version``; ``source_dates``: the dates (YYYY-MM-DD) of ``bl.source_days``."""
    if np.isnan(bl.kw[slot]):
        return None
    start = day_start_ms + slot * SLOT_MS
    return {
        "event_id": f"{prosumer_id}/{start}/{version}",
        "prosumer_id": prosumer_id,
        "isp_start": start,
        "isp_end": start + SLOT_MS,
        "baseline_kw": float(bl.kw[slot]),
        "method": cfg.method,
        "method_params": cfg.params,
        "adjustment_kw": float(bl.adjustment_kw[slot]),
        "source_days": source_dates,
        "computed_at": computed_at,
        "version": version,
    }


def baseline_records(
    prosumer_id: str,
    day_start_ms: int,
    day_index_to_date: Sequence[str],
    bl: DayBaseline,
    cfg: BaselineConfig,
    computed_at: int,
    version: int = 1,
) -> list[dict[str, Any]]:
    """Baseline (avro/Baseline.avsc) records for the 96 slots of a day; ids ``prosumer/isp_start/version``."""
    src = [day_index_to_date[j] for j in bl.source_days]
    recs = (
        baseline_record(prosumer_id, day_start_ms, s, src, bl, cfg, computed_at, version)
        for s in range(SLOTS_PER_DAY)
    )
    return [r for r in recs if r is not None]


def backtest(
    load_kw: np.ndarray, kind: np.ndarray, excluded: np.ndarray, cfg: BaselineConfig, warmup_days: int = 14
) -> np.ndarray:
    """Baseline for every day from ``warmup_days`` on (NaN rows elsewhere), same shape as ``load_kw``."""
    out = np.full(load_kw.shape, np.nan)
    for d in range(warmup_days, load_kw.shape[0]):
        bl = day_baseline(load_kw, d, kind, excluded, cfg)
        if bl is not None:
            out[d] = bl.kw
    return out
