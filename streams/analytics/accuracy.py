"""Accuracy metrics (batch functions) and an online accuracy tracker per entity.

Conventions: ``actual`` and ``predicted`` are equally long sequences in the same unit (Wh or kW). ``NaN`` pairs are
skipped. MASE divides the model's MAE by the MAE of the seasonal-naive forecast on the same targets (so < 1 means
the model beats seasonal naive). NMBE follows ASHRAE Guideline 14 with ``sum(actual - predicted)`` in the
numerator: positive means the prediction is too low. CV(RMSE) and NMBE are fractions (0.3 = 30 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def _pairs(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(p))
    return a[ok], p[ok]


def mae(actual, predicted) -> float:
    a, p = _pairs(actual, predicted)
    return float(np.mean(np.abs(a - p))) if a.size else math.nan


def nmae(actual, predicted) -> float:
    """MAE divided by the mean absolute actual value."""
    a, p = _pairs(actual, predicted)
    denom = float(np.mean(np.abs(a))) if a.size else 0.0
    return float(np.mean(np.abs(a - p))) / denom if denom else math.nan


def mape(actual, predicted) -> float:
    """Mean absolute percentage error as a fraction; pairs with actual == 0 are skipped."""
    a, p = _pairs(actual, predicted)
    nz = a != 0
    return float(np.mean(np.abs((a[nz] - p[nz]) / a[nz]))) if nz.any() else math.nan


def cv_rmse(actual, predicted) -> float:
    a, p = _pairs(actual, predicted)
    m = float(np.mean(a)) if a.size else 0.0
    return float(np.sqrt(np.mean((a - p) ** 2))) / m if m else math.nan


def nmbe(actual, predicted) -> float:
    a, p = _pairs(actual, predicted)
    m = float(np.mean(a)) if a.size else 0.0
    return float(np.sum(a - p)) / (a.size * m) if m else math.nan


def mase(actual, predicted, naive) -> float:
    """MAE(predicted) / MAE(naive), both on the pairs where all three are known."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    n = np.asarray(naive, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(p) | np.isnan(n))
    d = float(np.mean(np.abs(a[ok] - n[ok]))) if ok.any() else 0.0
    return float(np.mean(np.abs(a[ok] - p[ok]))) / d if d else math.nan


def pinball(actual: float, quantile_forecast: float, q: float) -> float:
    """Pinball (quantile) loss of one ``q`` quantile forecast, in the unit of the values."""
    d = actual - quantile_forecast
    return max(q * d, (q - 1.0) * d)


@dataclass
class OnlineAccuracy:
    """Running sums for MAE, NMAE, MAPE and MASE of one (entity, horizon); update once per scored target; and,
    for a model with a P10-P90 band, the band's pinball loss and coverage (:meth:`update_band`).

    ``naive`` is the seasonal-naive forecast of the same target issued at the same time.
    """

    n: int = 0
    abs_err: float = 0.0
    abs_naive_err: float = 0.0
    abs_actual: float = 0.0
    ape: float = 0.0
    n_ape: int = 0
    extra: dict[str, float] = field(default_factory=dict)
    band_n: int = 0  # scored points with a [lower, upper] band
    pinball_sum: float = 0.0  # sum over them of the mean pinball loss of lower (P10) and upper (P90), Wh
    covered: int = 0  # of them, actuals within [lower, upper]

    def update(self, actual: float, predicted: float, naive: float) -> None:
        if math.isnan(actual) or math.isnan(predicted) or math.isnan(naive):
            return
        self.n += 1
        self.abs_err += abs(actual - predicted)
        self.abs_naive_err += abs(actual - naive)
        self.abs_actual += abs(actual)
        if actual != 0:
            self.ape += abs((actual - predicted) / actual)
            self.n_ape += 1

    def update_band(self, actual: float, lower: float, upper: float, q_low: float, q_high: float) -> None:
        """Score one point's band: ``lower``/``upper`` are its ``q_low``/``q_high`` quantile forecasts."""
        if math.isnan(actual) or math.isnan(lower) or math.isnan(upper):
            return
        self.band_n += 1
        self.pinball_sum += 0.5 * (pinball(actual, lower, q_low) + pinball(actual, upper, q_high))
        self.covered += lower <= actual <= upper

    def figures(self) -> dict[str, float]:
        n = self.n
        return {
            "n": n,
            "mae": self.abs_err / n if n else math.nan,
            "nmae": self.abs_err / self.abs_actual if self.abs_actual else math.nan,
            "mape": self.ape / self.n_ape if self.n_ape else math.nan,
            "mase": self.abs_err / self.abs_naive_err if self.abs_naive_err else math.nan,
            "naive_mae": self.abs_naive_err / n if n else math.nan,
            "pinball": self.pinball_sum / self.band_n if self.band_n else math.nan,
            "coverage": self.covered / self.band_n if self.band_n else math.nan,
        }
