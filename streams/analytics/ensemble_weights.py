"""Ensemble weights as a function of input features, learnt online from recent errors (seed §5.1 meta-learning).

The seed's forecaster "combines [its members'] prediction results using a weighted average with dynamically
computed weights at run-time as a function of input features". Here the input features of a target point are its
lead bucket (how far ahead), its day type (working day or weekend) and its block of the day (four 6-hour
blocks); each combination is a cell. Per cell and member the weights keep an exponentially weighted mean absolute
error (``alpha`` per scored point); a member's weight is proportional to ``error ** -power`` over the members
with a forecast, so a member that is recently better for, say, weekend evenings a few hours ahead gets more
weight there. A cell with fewer than ``min_count`` scored points falls back to its lead bucket over all day
types and blocks, and that to equal weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: lead bucket upper bounds in hours (lead < bound): < 1 h, < 2 h, < 4 h, < 8 h, the rest of a day
LEAD_BOUNDS_H = (1, 2, 4, 8)


def lead_bucket(lead_ms: int) -> int:
    """Bucket of a lead time (target start minus issue time, ms)."""
    for i, b in enumerate(LEAD_BOUNDS_H):
        if lead_ms < b * HOUR_MS:
            return i
    return len(LEAD_BOUNDS_H)


def context(target_ms: int, lead_ms: int) -> tuple[int, int, int]:
    """Input-feature cell of a target point: (lead bucket, weekend 0/1, 6-hour block of the UTC day)."""
    weekday = (target_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
    return lead_bucket(lead_ms), int(weekday >= 5), int((target_ms % DAY_MS) // (6 * HOUR_MS))


@dataclass
class ErrorWeights:
    """Per-cell exponentially weighted absolute errors of the members and the weights derived from them."""

    members: tuple[str, ...]
    alpha: float = 0.05
    power: float = 6.0
    min_count: int = 10
    err: dict[tuple, np.ndarray] = field(
        default_factory=dict
    )  # cell -> EW |error| per member (NaN: none yet)
    count: dict[tuple, int] = field(default_factory=dict)

    def _update(self, cell: tuple, abs_err: np.ndarray) -> None:
        old = self.err.get(cell)
        if old is None:
            self.err[cell] = abs_err.copy()
        else:
            new = old + self.alpha * (abs_err - old)
            self.err[cell] = np.where(np.isnan(old), abs_err, np.where(np.isnan(abs_err), old, new))
        self.count[cell] = self.count.get(cell, 0) + 1

    def learn(self, cell: tuple[int, int, int], actual: float, preds: np.ndarray) -> None:
        """Score the members' forecasts ``preds`` (NaN = no forecast) of one point against its actual."""
        e = np.abs(preds - actual)
        self._update(cell, e)
        self._update((cell[0],), e)

    def weights(self, cell: tuple[int, int, int], available: np.ndarray) -> np.ndarray:
        """Weights (summing to 1) of the ``available`` members for a point of ``cell``."""
        for key in (cell, (cell[0],)):
            e = self.err.get(key)
            if e is not None and self.count.get(key, 0) >= self.min_count:
                ok = available & ~np.isnan(e)
                if ok.any():
                    w = np.where(ok, np.maximum(e, 1e-9 * (np.nanmax(e) + 1e-12)) ** -self.power, 0.0)
                    return w / w.sum()
        return available / max(int(available.sum()), 1)
