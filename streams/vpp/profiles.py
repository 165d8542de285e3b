"""Online daily load profiles: 96 x 15-minute normalised shapes per prosumer and day type.

Input is interval energy (Wh per 15-minute slot, slot start as UTC epoch ms). A local day is folded into the
prosumer's profile as soon as all 96 slots are present; re-delivered intervals overwrite their slot (at-least-once
safe) and intervals of an already folded day are ignored. Incomplete days are dropped once the prosumer's event
time is ``grace_days`` past them. Days with 92/100 slots (DST changes) therefore never complete and are skipped.

Each profile is a running mean over the last ``window_days`` days of that day type (cumulative mean for the first
days, then an exponential mean with weight ``1/window_days``), so state is constant per prosumer.
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


@dataclass(frozen=True)
class LoadProfile:
    """One prosumer's profile for one day type.

    ``shape``: 96 dimensionless values (slot energy / mean |slot energy|), slot 0 starts at local midnight.
    ``daily_wh``: mean daily net energy, Wh. ``peak_w``: mean of the daily peak slot power, W.
    ``load_factor``: mean power / peak power (dimensionless). ``as_of_ms``: end of the last folded day, UTC ms.
    """

    prosumer_id: str
    day_type: DayType
    shape: tuple[float, ...]
    daily_wh: float
    peak_w: float
    load_factor: float
    days_used: int
    as_of_ms: int


@dataclass
class _Running:
    shape: np.ndarray
    daily_wh: float
    peak_w: float
    days: int = 0
    as_of_ms: int = 0

    def fold(
        self, shape: np.ndarray, daily_wh: float, peak_w: float, window_days: int, as_of_ms: int
    ) -> None:
        self.days += 1
        w = 1.0 / min(self.days, window_days)
        self.shape += w * (shape - self.shape)
        self.daily_wh += w * (daily_wh - self.daily_wh)
        self.peak_w += w * (peak_w - self.peak_w)
        self.as_of_ms = max(self.as_of_ms, as_of_ms)


@dataclass
class _ProsumerState:
    open_days: dict[date, np.ndarray] = field(default_factory=dict)  # local date -> 96 slots (NaN = missing)
    folded_days: set[date] = field(default_factory=set)
    running: dict[DayType, _Running] = field(default_factory=dict)
    newest_day: date | None = None


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
        run.fold(shape, daily_wh, peak_w, self.window_days, end_ms)
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

    def features(
        self, prosumer_id: str, min_weekdays: int = 5, min_weekend_days: int = 2
    ) -> np.ndarray | None:
        """Clustering feature vector (192 values) or None while too few days are folded.

        ``[weekday shape, weekend shape x (weekend daily energy / weekday daily energy)]``: the weekend half keeps
        its level relative to weekdays, which separates offices (quiet weekends) from homes and farms.
        """
        wd = self.profile(prosumer_id, DayType.WEEKDAY)
        we = self.profile(prosumer_id, DayType.WEEKEND)
        if wd is None or we is None or wd.days_used < min_weekdays or we.days_used < min_weekend_days:
            return None
        return feature_vector(np.asarray(wd.shape), wd.daily_wh, np.asarray(we.shape), we.daily_wh)


def feature_vector(
    weekday_shape: np.ndarray, weekday_wh: float, weekend_shape: np.ndarray, weekend_wh: float
) -> np.ndarray:
    """Concatenate weekday and level-scaled weekend shapes (see ``LoadProfiler.features``)."""
    ratio = weekend_wh / weekday_wh if weekday_wh != 0 else 1.0
    return np.concatenate([weekday_shape, weekend_shape * ratio])
