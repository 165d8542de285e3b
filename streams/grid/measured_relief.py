"""Proof of relief, after delivery (pure): the loading recomputed from the measured 15-minute intervals and a verdict
per congestion point and slot against the loading forecast before the orders.

Measured net power of a prosumer in a slot is the sum of its meters' latest intervals' ``avg_kw`` (import
positive, kW; :func:`streams.analytics.baseline_lookback.slot_kw`). A mapped prosumer without a measured interval
(its meter silent past the grace) takes its *expected* power (forecast plus its ordered flexibility) and is counted
in ``missing_meters``: the DSO sees how much of the result is measured.

Verdict (``before``: forecast loading without the orders, ``measured``: loading from the intervals, both %):

* ``NOT_CONGESTED``: ``before`` and ``measured`` within the limit (the orders were not for this point);
* ``RELIEVED``: ``before`` above the limit, ``measured`` within it;
* ``PARTIALLY_RELIEVED``: ``measured`` lower than ``before`` but still above the limit (a defector, too little);
* ``NOT_RELIEVED``: ``measured`` above the limit and not lower than ``before`` (also: congestion where none was
  forecast);
* ``UNKNOWN``: no forecast loading before the orders, or a power flow that did not converge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandapower (~4 s of imports) only where a grid is configured
    from streams.grid.model import CongestionPoint, GridModel
    from streams.grid.powerflow import PowerFlowEngine


class Verdict(StrEnum):
    PENDING = "PENDING"
    RELIEVED = "RELIEVED"
    PARTIALLY_RELIEVED = "PARTIALLY_RELIEVED"
    NOT_RELIEVED = "NOT_RELIEVED"
    NOT_CONGESTED = "NOT_CONGESTED"
    UNKNOWN = "UNKNOWN"


def verdict(before: float | None, measured: float | None, limit: float) -> Verdict:
    """The verdict of one congestion point and slot from its loadings (%, None: unknown) and limit (%)."""
    if before is None or measured is None:
        return Verdict.UNKNOWN
    if measured <= limit:
        return Verdict.RELIEVED if before > limit else Verdict.NOT_CONGESTED
    return Verdict.PARTIALLY_RELIEVED if measured < before else Verdict.NOT_RELIEVED


def overload_kw(cp: CongestionPoint, loading: float | None) -> float | None:
    """Apparent power above the point's limit (kVA, as kW at cos phi 1) at ``loading`` % (None: unknown)."""
    if loading is None:
        return None
    return max(0.0, loading - cp.max_loading_percent) / 100.0 * cp.rated_kva


@dataclass(frozen=True)
class MeasuredSlot:
    """The measured net kW per mapped prosumer in one slot (UTC epoch ms start), ``GridModel.prosumer_ids`` order,
    import positive; ``missing``: how many had no interval and took their expected kW instead."""

    slot_start: int
    prosumer_kw: np.ndarray
    missing: int


def measured_slot(
    model: GridModel, slot_start: int, measured_kw: Mapping[str, float], expected_kw: Sequence[float] | None
) -> MeasuredSlot:
    """``measured_kw``: prosumer id -> measured net kW (prosumers with an interval); the others take
    ``expected_kw`` (per prosumer in model order, kW; None: 0 kW)."""
    fallback = np.zeros(len(model.prosumer_ids)) if expected_kw is None else np.asarray(expected_kw, float)
    kw = np.array([measured_kw.get(p, fallback[j]) for j, p in enumerate(model.prosumer_ids)], dtype=float)
    return MeasuredSlot(slot_start, kw, sum(p not in measured_kw for p in model.prosumer_ids))


def measured_loading(
    model: GridModel, engine: PowerFlowEngine, slot: MeasuredSlot
) -> dict[str, float | None]:
    """Congestion point id -> loading % of one slot from the measured kW (the grid's own loads and PV on their
    profiles, as in the forecast); None where the power flow did not converge."""
    from streams.grid.background import with_background

    starts = np.array([slot.slot_start], dtype=np.int64)
    res = engine.run(with_background(model, slot.prosumer_kw[None, :], starts))
    if not res.converged[0]:
        return {cp.id: None for cp in model.congestion_points}
    return {cp.id: float(res.loading_percent[0, c]) for c, cp in enumerate(model.congestion_points)}
