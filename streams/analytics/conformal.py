"""Quantiles from conformal calibration on recent residuals, scaled by the forecast's level.

For each lead bucket the calibrator keeps the last ``window`` scaled residuals ``(actual - point) / s`` of the
ensemble's point forecasts, where ``s = |point| + floor * level`` (``level``: the series' recent mean absolute
value), so a PV night forecast of 0 gets a narrow band and a midday one a wide band. A quantile ``q`` of a new
point is ``point + Q_q(residuals) * s`` (empirical quantile, split-conformal); a bucket with too few residuals borrows
all buckets' residuals, and until ``min_count`` residuals are there it returns NaN. Non-negative series clip the quantiles at 0.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ConformalQuantiles:
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    window: int = 500
    min_count: int = 30
    floor: float = 0.1
    residuals: dict[int, deque] = field(default_factory=dict)

    def scale(self, point: float, level: float) -> float:
        return abs(point) + self.floor * level + 1e-9

    def learn(self, bucket: int, actual: float, point: float, level: float) -> None:
        """Add the scaled residual of one scored point of lead bucket ``bucket``."""
        r = self.residuals.setdefault(bucket, deque(maxlen=self.window))
        r.append((actual - point) / self.scale(point, level))

    def offsets(self, bucket: int) -> np.ndarray | None:
        """Empirical quantiles of the scaled residuals of a lead bucket; a bucket with fewer than ``min_count``
        residuals uses all buckets' residuals pooled (None while those are too few as well)."""
        r = self.residuals.get(bucket)
        if r is None or len(r) < self.min_count:
            pooled = [v for res in self.residuals.values() for v in res]
            if len(pooled) < self.min_count:
                return None
            return np.quantile(np.asarray(pooled), self.quantiles)
        return np.quantile(np.fromiter(r, float, len(r)), self.quantiles)

    def apply(
        self, offsets: np.ndarray | None, point: float, level: float, nonnegative: bool
    ) -> dict[float, float]:
        """Quantile forecasts of a point from a bucket's :meth:`offsets` (NaN while uncalibrated)."""
        if offsets is None or np.isnan(point):
            return {q: float("nan") for q in self.quantiles}
        s = self.scale(point, level)
        out = {q: point + float(v) * s for q, v in zip(self.quantiles, offsets, strict=True)}
        return {q: max(v, 0.0) for q, v in out.items()} if nonnegative else out

    def predict(self, bucket: int, point: float, level: float, nonnegative: bool) -> dict[float, float]:
        """Quantile forecasts of one point (same unit as ``point``); NaN while uncalibrated."""
        return self.apply(self.offsets(bucket), point, level, nonnegative)
