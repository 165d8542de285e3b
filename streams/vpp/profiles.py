"""Online daily load profiles: 96 x 15-minute normalised shapes per prosumer and day type.

Input is interval energy (Wh per 15-minute slot, slot start as UTC epoch ms). A local day is folded into the
prosumer's profile as soon as all 96 slots are present; re-delivered intervals overwrite their slot (at-least-once
safe) and intervals of an already folded day are ignored. Incomplete days are dropped once the prosumer's event
time is ``grace_days`` past them. Days with 92/100 slots (DST changes) therefore never complete and are skipped.

Each profile is a running mean over the last ``window_days`` days of that day type (cumulative mean for the first
days, then an exponential mean with weight ``1/window_days``), so state is constant per prosumer.

Clustering features (``LoadProfiler.features``, ``FEATURE_DIM`` = 199 values, all dimensionless, independent of the
prosumer's consumption level) are the weekday shape (96), the weekend shape scaled by weekend/weekday energy (96)
and seven shape descriptors (``DESCRIPTORS``, see ``Descriptors``), all folded online day by day. A seasonal
(summer/winter) energy ratio is deliberately not a feature: it needs a year of data, while new prosumers are to be
segmented after one week, and the running window covers 28 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

import numpy as np

SLOTS_PER_DAY = 96
SLOT_MS = 15 * 60 * 1000


class DayType(StrEnum):
    WEEKDAY = "WEEKDAY"
    WEEKEND = "WEEKEND"


def day_type_of(day: date) -> DayType:
    return DayType.WEEKEND if day.weekday() >= 5 else DayType.WEEKDAY


def normalise_day(energy_wh: np.ndarray) -> np.ndarray | None:
    """Dimensionless shape of one day: slot energy divided by the mean absolute slot energy (mean |x| = 1).

    Net-export slots stay negative. Returns None for an all-zero day (no shape).
    """
    scale = float(np.abs(energy_wh).mean())
    if scale <= 0.0:
        return None
    return energy_wh / scale


def roughness_of_day(energy_wh: np.ndarray) -> float:
    """Short-term variability of one day: mean |slot-to-slot change| / mean |slot energy| (dimensionless).

    About 0.1 for smooth aggregated loads (standard profiles, continuous processes), 0.3-0.4 for single households
    whose appliances switch on and off within the hour. 0 for an all-zero day.
    """
    scale = float(np.abs(energy_wh).mean())
    return float(np.abs(np.diff(energy_wh)).mean()) / scale if scale > 0 else 0.0


@dataclass(frozen=True)
class LoadProfile:
    """One prosumer's profile for one day type.

    ``shape``: 96 dimensionless values (slot energy / mean |slot energy|), slot 0 starts at local midnight.
    ``daily_wh``: mean daily net energy, Wh. ``peak_w``: mean of the daily peak slot power, W.
    ``load_factor``: mean power / peak power (dimensionless). ``as_of_ms``: end of the last folded day, UTC ms.
    ``roughness``: running mean of ``roughness_of_day`` (dimensionless). ``daily_cv``: day-to-day coefficient of
    variation of the daily energy, std / |mean| (dimensionless, 0 while only one day is folded).
    """

    prosumer_id: str
    day_type: DayType
    shape: tuple[float, ...]
    daily_wh: float
    peak_w: float
    load_factor: float
    days_used: int
    as_of_ms: int
    roughness: float = 0.0
    daily_cv: float = 0.0


@dataclass
class _Running:
    """Running (cumulative, then exponential) means of one day type; constant state per prosumer."""

    shape: np.ndarray
    daily_wh: float
    peak_w: float
    days: int = 0
    as_of_ms: int = 0
    daily_wh_sq: float = 0.0  # mean of squared daily energy, Wh^2 (for the day-to-day variation)
    roughness: float = 0.0

    def fold(
        self,
        shape: np.ndarray,
        daily_wh: float,
        peak_w: float,
        window_days: int,
        as_of_ms: int,
        roughness: float = 0.0,
    ) -> None:
        self.days += 1
        w = 1.0 / min(self.days, window_days)
        self.shape += w * (shape - self.shape)
        self.daily_wh += w * (daily_wh - self.daily_wh)
        self.daily_wh_sq += w * (daily_wh * daily_wh - self.daily_wh_sq)
        self.peak_w += w * (peak_w - self.peak_w)
        self.roughness += w * (roughness - self.roughness)
        self.as_of_ms = max(self.as_of_ms, as_of_ms)

    def daily_cv(self) -> float:
        var = max(self.daily_wh_sq - self.daily_wh * self.daily_wh, 0.0)
        mean = abs(self.daily_wh)
        return float(np.sqrt(var)) / mean if mean > 0 else 0.0


@dataclass
class _Mean:
    """Running mean with the same window rule as ``_Running`` (for Saturday / Sunday daily energy, Wh)."""

    value: float = 0.0
    days: int = 0

    def fold(self, x: float, window_days: int) -> None:
        self.days += 1
        self.value += (x - self.value) / min(self.days, window_days)


@dataclass
class _ProsumerState:
    open_days: dict[date, np.ndarray] = field(default_factory=dict)  # local date -> 96 slots (NaN = missing)
    folded_days: set[date] = field(default_factory=set)
    running: dict[DayType, _Running] = field(default_factory=dict)
    newest_day: date | None = None
    weekend_wh: dict[int, _Mean] = field(default_factory=dict)  # 5 = Saturday, 6 = Sunday: daily energy, Wh


class LoadProfiler:
    """Keeps per-prosumer running profiles; ``add`` returns the profiles updated by that interval (0 or 1)."""

    def __init__(self, tz: str = "UTC", window_days: int = 28, grace_days: int = 2) -> None:
        self.tz = ZoneInfo(tz)
        self.window_days = window_days
        self.grace_days = grace_days
        self._state: dict[str, _ProsumerState] = {}

    def _local_slot(self, start_ms: int) -> tuple[date, int]:
        local = datetime.fromtimestamp(start_ms / 1000, tz=UTC).astimezone(self.tz)
        return local.date(), (local.hour * 60 + local.minute) // 15

    def add(self, prosumer_id: str, start_ms: int, energy_wh: float) -> list[LoadProfile]:
        """Record one 15-minute interval (slot start UTC ms, energy Wh); return profiles updated now."""
        st = self._state.setdefault(prosumer_id, _ProsumerState())
        day, slot = self._local_slot(start_ms)
        if day in st.folded_days:
            return []
        if st.newest_day is None or day > st.newest_day:
            st.newest_day = day
            self._expire(st)
        buf = st.open_days.get(day)
        if buf is None:
            if (st.newest_day - day).days > self.grace_days:
                return []
            buf = st.open_days[day] = np.full(SLOTS_PER_DAY, np.nan)
        buf[slot] = energy_wh
        if np.isnan(buf).any():
            return []
        del st.open_days[day]
        st.folded_days.add(day)
        profile = self._fold(prosumer_id, st, day, buf, start_ms + SLOT_MS)
        return [profile] if profile else []

    def add_day(self, prosumer_id: str, day_start_ms: int, energy_wh: np.ndarray) -> list[LoadProfile]:
        """Record a whole local day at once: 96 slot energies (Wh) from local midnight ``day_start_ms`` (UTC ms)."""
        if len(energy_wh) != SLOTS_PER_DAY:
            raise ValueError(f"a day has {SLOTS_PER_DAY} slots, got {len(energy_wh)}")
        day, slot = self._local_slot(day_start_ms)
        if slot != 0:
            raise ValueError("day_start_ms is not a local midnight")
        st = self._state.setdefault(prosumer_id, _ProsumerState())
        if day in st.folded_days:
            return []
        if st.newest_day is None or day > st.newest_day:
            st.newest_day = day
            self._expire(st)
        elif (st.newest_day - day).days > self.grace_days:
            return []
        st.open_days.pop(day, None)
        st.folded_days.add(day)
        profile = self._fold(
            prosumer_id, st, day, np.asarray(energy_wh, dtype=float), day_start_ms + 86_400_000
        )
        return [profile] if profile else []

    def _expire(self, st: _ProsumerState) -> None:
        assert st.newest_day is not None
        for d in [d for d in st.open_days if (st.newest_day - d).days > self.grace_days]:
            del st.open_days[d]
        horizon = self.grace_days + 1
        st.folded_days = {d for d in st.folded_days if (st.newest_day - d).days <= horizon}

    def _fold(
        self, prosumer_id: str, st: _ProsumerState, day: date, energy_wh: np.ndarray, end_ms: int
    ) -> LoadProfile | None:
        shape = normalise_day(energy_wh)
        if shape is None:
            return None
        dt = day_type_of(day)
        daily_wh = float(energy_wh.sum())
        peak_w = float(energy_wh.max()) * 4.0  # Wh per 15 min -> mean W in the slot
        run = st.running.get(dt)
        if run is None:
            run = st.running[dt] = _Running(np.zeros(SLOTS_PER_DAY), 0.0, 0.0)
        run.fold(shape, daily_wh, peak_w, self.window_days, end_ms, roughness_of_day(energy_wh))
        if dt == DayType.WEEKEND:
            st.weekend_wh.setdefault(day.weekday(), _Mean()).fold(daily_wh, self.window_days)
        return self._snapshot(prosumer_id, dt, run)

    @staticmethod
    def _snapshot(prosumer_id: str, dt: DayType, run: _Running) -> LoadProfile:
        mean_w = run.daily_wh / 24.0
        return LoadProfile(
            prosumer_id=prosumer_id,
            day_type=dt,
            shape=tuple(float(x) for x in run.shape),
            daily_wh=run.daily_wh,
            peak_w=run.peak_w,
            load_factor=mean_w / run.peak_w if run.peak_w > 0 else 0.0,
            days_used=run.days,
            as_of_ms=run.as_of_ms,
            roughness=run.roughness,
            daily_cv=run.daily_cv(),
        )

    def profile(self, prosumer_id: str, day_type: DayType) -> LoadProfile | None:
        st = self._state.get(prosumer_id)
        run = st.running.get(day_type) if st else None
        return self._snapshot(prosumer_id, day_type, run) if run else None

    def days_used(self, prosumer_id: str) -> int:
        st = self._state.get(prosumer_id)
        return sum(r.days for r in st.running.values()) if st else 0

    def prosumers(self) -> list[str]:
        return sorted(self._state)

    def descriptors(
        self, prosumer_id: str, min_weekdays: int = 5, min_weekend_days: int = 2
    ) -> Descriptors | None:
        """Shape descriptors of one prosumer (see ``Descriptors``) or None while too few days are folded."""
        st = self._state.get(prosumer_id)
        wd = self.profile(prosumer_id, DayType.WEEKDAY)
        we = self.profile(prosumer_id, DayType.WEEKEND)
        if st is None or wd is None or we is None:
            return None
        if wd.days_used < min_weekdays or we.days_used < min_weekend_days:
            return None
        sat, sun = st.weekend_wh.get(5), st.weekend_wh.get(6)
        return describe(
            np.asarray(wd.shape),
            wd.daily_wh,
            sat.value if sat else we.daily_wh,
            sun.value if sun else we.daily_wh,
            wd.load_factor,
            wd.roughness,
            wd.daily_cv,
        )

    def features(
        self, prosumer_id: str, min_weekdays: int = 5, min_weekend_days: int = 2
    ) -> np.ndarray | None:
        """Clustering feature vector (``FEATURE_DIM`` = 199 values) or None while too few days are folded.

        ``[weekday shape (96), weekend shape x (weekend daily energy / weekday daily energy) (96), descriptors (7)]``:
        the weekend half keeps its level relative to weekdays (offices have quiet weekends, homes and farms not);
        the descriptors (``DESCRIPTORS``) summarise what the mean shapes hide (spikiness, base load, variability).
        Everything is dimensionless, so prosumers of any size compare. Defaults need one full week of data.
        """
        d = self.descriptors(prosumer_id, min_weekdays, min_weekend_days)
        if d is None:
            return None
        wd = self.profile(prosumer_id, DayType.WEEKDAY)
        we = self.profile(prosumer_id, DayType.WEEKEND)
        assert wd is not None and we is not None
        return feature_vector(np.asarray(wd.shape), wd.daily_wh, np.asarray(we.shape), we.daily_wh, d)


DESCRIPTORS = (
    "saturday_ratio",
    "sunday_ratio",
    "load_factor",
    "base_share",
    "morning_evening_balance",
    "roughness",
    "daily_cv",
)
FEATURE_DIM = 2 * SLOTS_PER_DAY + len(DESCRIPTORS)
MORNING = slice(6 * 4, 10 * 4)  # 06:00-10:00 local
EVENING = slice(17 * 4, 22 * 4)  # 17:00-22:00 local


@dataclass(frozen=True)
class Descriptors:
    """Dimensionless descriptors of a prosumer's load, computed from the online running profiles.

    ``saturday_ratio`` / ``sunday_ratio``: mean Saturday / Sunday daily energy over mean weekday daily energy
    (offices ~0.15, shops 0.5-1 on Saturday, homes and farms ~1). ``load_factor``: weekday mean power / mean daily
    15-min peak power (single households 0.2-0.3, aggregated or continuous loads 0.4-0.8). ``base_share``: 10th
    percentile of the weekday mean shape, i.e. base load as a share of mean load. ``morning_evening_balance``:
    (m - e) / (|m| + |e|) of the mean weekday shape over 06-10 h (m) and 17-22 h (e), in [-1, 1]. ``roughness``:
    mean weekday ``roughness_of_day``. ``daily_cv``: weekday day-to-day variation of daily energy, std / |mean|.
    """

    saturday_ratio: float
    sunday_ratio: float
    load_factor: float
    base_share: float
    morning_evening_balance: float
    roughness: float
    daily_cv: float

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in DESCRIPTORS], dtype=float)


def _ratio(num: float, den: float) -> float:
    return num / abs(den) if abs(den) > 0 else 1.0


def describe(
    weekday_shape: np.ndarray,
    weekday_wh: float,
    saturday_wh: float,
    sunday_wh: float,
    load_factor: float,
    roughness: float,
    daily_cv: float,
) -> Descriptors:
    """Descriptors from the weekday mean shape (dimensionless) and mean daily energies (Wh); see ``Descriptors``."""
    m, e = float(weekday_shape[MORNING].mean()), float(weekday_shape[EVENING].mean())
    denom = abs(m) + abs(e)
    return Descriptors(
        saturday_ratio=_ratio(saturday_wh, weekday_wh),
        sunday_ratio=_ratio(sunday_wh, weekday_wh),
        load_factor=load_factor,
        base_share=float(np.quantile(weekday_shape, 0.1)),
        morning_evening_balance=(m - e) / denom if denom > 0 else 0.0,
        roughness=roughness,
        daily_cv=daily_cv,
    )


def feature_vector(
    weekday_shape: np.ndarray,
    weekday_wh: float,
    weekend_shape: np.ndarray,
    weekend_wh: float,
    descriptors: Descriptors,
) -> np.ndarray:
    """Concatenate weekday shape, level-scaled weekend shape and descriptors (see ``LoadProfiler.features``)."""
    ratio = _ratio(weekend_wh, weekday_wh)
    return np.concatenate([weekday_shape, weekend_shape * ratio, descriptors.as_array()])


def feature_weights(weekday_shape: float = 4.0, weekend_shape: float = 2.0) -> np.ndarray:
    """Per-feature weights for clustering standardised features (``FEATURE_DIM`` values).

    After standardisation every feature has unit variance; each descriptor keeps weight 1 while each 96-slot shape
    block shares its weight over its slots (weight w spread as sqrt(w / 96) per slot), so the 192 slot values count
    as 6 descriptors in squared distance instead of drowning the 7 descriptors.
    """
    return np.concatenate(
        [
            np.full(SLOTS_PER_DAY, np.sqrt(weekday_shape / SLOTS_PER_DAY)),
            np.full(SLOTS_PER_DAY, np.sqrt(weekend_shape / SLOTS_PER_DAY)),
            np.ones(len(DESCRIPTORS)),
        ]
    )


def split_features(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Inverse of ``feature_vector``: (weekday shape, level-scaled weekend shape, descriptors by name)."""
    if len(vector) != FEATURE_DIM:
        raise ValueError(f"a feature vector has {FEATURE_DIM} values, got {len(vector)}")
    d = vector[2 * SLOTS_PER_DAY :]
    return (
        vector[:SLOTS_PER_DAY],
        vector[SLOTS_PER_DAY : 2 * SLOTS_PER_DAY],
        {name: float(x) for name, x in zip(DESCRIPTORS, d, strict=True)},
    )
