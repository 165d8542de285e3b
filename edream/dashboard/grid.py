"""Sums of meter power on a common time grid: each meter's last reading held forward within a staleness limit.

A meter that reports every 30 s has no point in most 15-s buckets; summing only the points that exist would
count it as 0 kW there (a saw-tooth portfolio curve). Here every grid time ``t`` takes, per meter, its newest
reading at or before ``t`` if that reading is at most ``stale_after_ms`` old, and counts how many meters that
was ("n of m meters reporting"). Times are UTC epoch ms, power in kW.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Grid:
    """Grid times ``start_ms, start_ms + step_ms, ..., <= end_ms`` (UTC epoch ms)."""

    start_ms: int
    end_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if self.step_ms <= 0:
            raise ValueError(f"grid step must be positive, got {self.step_ms} ms")

    @classmethod
    def aligned(cls, since_ms: int, until_ms: int, step_ms: int) -> Grid:
        """The grid of multiples of ``step_ms`` within ``[since_ms, until_ms]``."""
        first = -(-since_ms // step_ms) * step_ms
        return cls(first, until_ms // step_ms * step_ms, step_ms)

    def times(self) -> list[int]:
        return list(range(self.start_ms, self.end_ms + 1, self.step_ms))


@dataclass(frozen=True)
class GridSum:
    """A summed curve: ``points`` = ``[[t_ms, kW or None]]`` (None: no meter reporting at ``t``), ``reporting`` =
    meters with a fresh reading at each ``t``, ``meters`` = meters that were summed."""

    points: list[list[float | None]]
    reporting: list[int]
    meters: int

    @property
    def reporting_now(self) -> int:
        """Meters fresh at the last grid time (0 for an empty grid)."""
        return self.reporting[-1] if self.reporting else 0


def held_value(samples: Sequence[tuple[int, float]], t_ms: int, stale_after_ms: int) -> float | None:
    """The newest sample at or before ``t_ms`` if it is at most ``stale_after_ms`` old; ``samples`` sorted by
    time."""
    i = bisect_right(samples, t_ms, key=lambda s: s[0])
    if i == 0:
        return None
    ts, kw = samples[i - 1]
    return kw if t_ms - ts <= stale_after_ms else None


def grid_sum(
    per_meter: Mapping[str, Sequence[tuple[int, float]]], grid: Grid, stale_after_ms: int, ndigits: int = 4
) -> GridSum:
    """Sum of the held values of every meter in ``per_meter`` (samples sorted by time) at each grid time."""
    series = [sorted(s) for s in per_meter.values()]
    points: list[list[float | None]] = []
    reporting: list[int] = []
    for t in grid.times():
        held = [v for s in series if (v := held_value(s, t, stale_after_ms)) is not None]
        points.append([t, round(sum(held), ndigits) if held else None])
        reporting.append(len(held))
    return GridSum(points, reporting, len(series))
