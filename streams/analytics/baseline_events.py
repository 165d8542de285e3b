"""Settlement-grade DR baselines: event-style evaluation of the PJM/NYISO/CAISO-style presets (issue 17).

A DR settlement compares metered load in the event hours with the customer baseline load (CBL) computed for
those hours: the X-of-Y (or Y-of-Y) day-ahead shape of :func:`~streams.analytics.baselines.day_baseline`,
optionally adjusted by how the event day ran in an **adjustment window** of ``window_h`` hours ending
``lead_h`` hours before the event start (one adjustment for the whole event, known before the event begins).

No look-ahead, no forward-fill leakage: load rows are 96 quarter-hour means (kW), but the meter's own interval
may be longer (``native_slots``: 4 for hourly data forward-filled into quarter hours). A quarter hour enters the
adjustment window only if its meter interval **ended** by the window's end, so an hourly value is never used
before its hour is over.

Adjustment: additive ``+ (actual - baseline)`` over the window, multiplicative ``x actual / baseline``; each
capped asymmetrically: the change is clipped to ``[-cap_down, +cap_up]`` x the baseline (``None``: no cap), then
scaled by ``weight`` (a shrunk, partial adjustment: a household's day-level factor is small against its quarter-hour
noise, so the full correction adds more error than it removes).
Household load is right-skewed (a day runs far above its baseline more often than far below), so a symmetric
multiplicative cap clips upward corrections more often and biases baselines low; the asymmetric cap is the remedy
measured in :func:`evaluate_presets`.

Scoring (:func:`evaluate_events`): every non-event working day after warm-up gets a pseudo event in the same
hours (``EventWindow``); the CBL of the event hours is compared with the metered load there, hourly. NMBE > 0
means the baseline is too low (ASHRAE Guideline 14 sign: it under-credits delivered flexibility).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from streams.analytics import accuracy
from streams.analytics.baselines import SLOTS_PER_DAY, BaselineConfig, day_baseline

ADJUSTMENTS = ("none", "additive", "multiplicative")


@dataclass(frozen=True)
class EventWindow:
    """A DR event: ``start_slot`` (quarter hour of the day, 68 = 17:00 on the grid) and ``slots`` long."""

    start_slot: int = 68
    slots: int = 12

    def __post_init__(self) -> None:
        if self.slots <= 0 or self.slots % 4 or not 0 <= self.start_slot <= SLOTS_PER_DAY - self.slots:
            raise ValueError("an event is whole hours (slots a multiple of 4) within one day")


@dataclass(frozen=True)
class EventPreset:
    """A settlement baseline: look-back selection (``method``, ``x``, ``y``) and the event-day adjustment."""

    name: str
    method: str = "AVERAGE_Y"
    x: int = 10
    y: int = 10
    adjust: str = "none"
    window_h: float = 3.0
    lead_h: float = 1.0
    cap_down: float | None = 0.2
    cap_up: float | None = 0.2
    #: share of the (capped) adjustment applied, in (0, 1]: below 1 it shrinks a noisy day-level correction
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.weight <= 1.0:
            raise ValueError(f"preset {self.name!r}: weight must be in (0, 1], got {self.weight}")
        if self.adjust not in ADJUSTMENTS:
            raise ValueError(
                f"preset {self.name!r}: unknown adjustment {self.adjust!r}; one of {ADJUSTMENTS}"
            )
        if self.window_h <= 0 or self.lead_h < 0:
            raise ValueError(f"preset {self.name!r}: need window_h > 0 and lead_h >= 0")

    @property
    def lookback(self) -> BaselineConfig:
        return BaselineConfig(self.method, x=self.x, y=self.y)


#: Presets in the style of the US ISO programmes (simplified: weekday look-back, one adjustment per event).
PRESETS: tuple[EventPreset, ...] = (
    EventPreset("10of10 (no adjustment)"),
    EventPreset("PJM-style high 4 of 5, additive", "HIGH_X_OF_Y", 4, 5, "additive", 3.0, 1.0, None, None),
    EventPreset("NYISO-style high 5 of 10, mult +-20 %", "HIGH_X_OF_Y", 5, 10, "multiplicative", 2.0, 2.0),
    EventPreset(
        "CAISO-style 10 of 10, mult +-40 %", "AVERAGE_Y", 10, 10, "multiplicative", 3.0, 1.0, 0.4, 0.4
    ),
    EventPreset("10 of 10, mult +-20 %", adjust="multiplicative"),
    EventPreset("10 of 10, mult -20/+60 % (asymmetric)", adjust="multiplicative", cap_down=0.2, cap_up=0.6),
    EventPreset("10 of 10, additive +-20 %", adjust="additive"),
    EventPreset("10 of 10, additive uncapped", adjust="additive", cap_down=None, cap_up=None),
    EventPreset(
        "10 of 10, half additive over 12 h",
        adjust="additive",
        window_h=12.0,
        cap_down=None,
        cap_up=None,
        weight=0.5,
    ),
)


def window_slots(event: EventWindow, preset: EventPreset, native_slots: int) -> np.ndarray:
    """Quarter-hour offsets (relative to the event day's first slot; negative = the day before) of the
    adjustment window, keeping only those whose meter interval of ``native_slots`` ended by the window end."""
    end = event.start_slot - round(preset.lead_h * 4)
    start = end - round(preset.window_h * 4)
    if start < -SLOTS_PER_DAY:  # the adjustment reads the event day and the day before, nothing earlier
        raise ValueError(
            f"preset {preset.name!r}: an adjustment window of {preset.window_h} h ending {preset.lead_h} h before "
            f"an event at slot {event.start_slot} starts before the day before the event"
        )
    slots = np.arange(start, end)
    interval_end = (np.floor_divide(slots, native_slots) + 1) * native_slots
    return slots[interval_end <= end]


def event_baseline(
    load_kw: np.ndarray,
    d: int,
    kind: np.ndarray,
    excluded: np.ndarray,
    preset: EventPreset,
    event: EventWindow,
    native_slots: int = 1,
) -> np.ndarray | None:
    """CBL (kW per quarter hour) of the event slots of day ``d``; None without look-back days."""
    bl = day_baseline(load_kw, d, kind, excluded, preset.lookback, same_day=False)
    if bl is None:
        return None
    ev = slice(event.start_slot, event.start_slot + event.slots)
    base = bl.kw[ev]
    if preset.adjust == "none":
        return base
    w = window_slots(event, preset, native_slots)
    if w.size == 0 or d == 0:
        return base
    two_actual = np.concatenate([load_kw[d - 1], load_kw[d]])
    ref_rows = np.stack([np.concatenate([load_kw[j - 1], load_kw[j]]) for j in bl.source_days if j > 0])
    idx = w + SLOTS_PER_DAY
    with np.errstate(invalid="ignore"):
        actual = float(np.nanmean(two_actual[idx])) if np.isfinite(two_actual[idx]).any() else np.nan
        ref = float(np.nanmean(ref_rows[:, idx]))
    if np.isnan(actual) or np.isnan(ref):
        return base
    lo = -np.inf if preset.cap_down is None else -preset.cap_down
    hi = np.inf if preset.cap_up is None else preset.cap_up
    if preset.adjust == "additive":
        # the shift is capped relative to the window's baseline level
        scale = abs(ref) if ref else 1.0
        return base + preset.weight * float(np.clip((actual - ref) / scale, lo, hi)) * scale
    if ref <= 0:
        return base
    return base * (1.0 + preset.weight * float(np.clip(actual / ref - 1.0, lo, hi)))


def evaluate_events(
    load_kw: np.ndarray,
    kind: np.ndarray,
    excluded: np.ndarray,
    preset: EventPreset,
    event: EventWindow = EventWindow(),
    native_slots: int = 1,
    warmup_days: int = 14,
) -> dict[str, float]:
    """Hourly NMBE and CV(RMSE) of the preset's CBL in the event hours of every non-event working day."""

    def cbl(d: int) -> np.ndarray | None:
        return event_baseline(load_kw, d, kind, excluded, preset, event, native_slots)

    return evaluate_cbl(load_kw, kind, excluded, cbl, event, warmup_days)


def evaluate_cbl(
    load_kw: np.ndarray,
    kind: np.ndarray,
    excluded: np.ndarray,
    cbl_of_day: Callable[[int], np.ndarray | None],
    event: EventWindow = EventWindow(),
    warmup_days: int = 14,
) -> dict[str, float]:
    """:func:`evaluate_events` for any baseline: ``cbl_of_day(d)`` gives the CBL (kW) of day ``d``'s event slots
    (None: no baseline that day)."""
    actual, cbl = [], []
    ev = slice(event.start_slot, event.start_slot + event.slots)
    for d in range(warmup_days, load_kw.shape[0]):
        if excluded[d] or kind[d] != 0 or np.isnan(load_kw[d, ev]).any():
            continue
        b = cbl_of_day(d)
        if b is None:
            continue
        actual.append(load_kw[d, ev])
        cbl.append(b)
    if not actual:
        return {"events": 0, "nmbe": float("nan"), "cv_rmse": float("nan")}
    a = np.stack(actual).reshape(len(actual), -1, 4).mean(axis=2)  # hourly means
    b = np.stack(cbl).reshape(len(cbl), -1, 4).mean(axis=2)
    return {"events": len(actual), "nmbe": accuracy.nmbe(a, b), "cv_rmse": accuracy.cv_rmse(a, b)}
