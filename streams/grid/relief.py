"""Proof of relief, before delivery (pure): the congestion forecast re-run with the ordered flexibility applied.

Each order's latest revision counts (cancelled ones do not); a prosumer's allocation moves its forecast net
consumption the way the order's direction says (REDUCE: minus kW, INCREASE: plus kW, slot averages). Allocations
of prosumers that are not on this grid change nothing here and are counted in ``unmapped_kw`` so the DSO sees them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streams.flex.model import Direction
from streams.flex.orders import FlexOrder
from streams.grid.congestion import SlotCongestion, forecast_congestion
from streams.grid.injections import Injections
from streams.grid.model import GridModel
from streams.grid.powerflow import PowerFlowEngine


@dataclass(frozen=True)
class ExpectedRelief:
    """One congestion point and slot (UTC epoch ms): loading % before and after the orders (None: not converged),
    ``ordered_kw`` on the grid's prosumers in that slot (signed: + more consumption), ``relieved``: after <= limit."""

    congestion_point_id: str
    slot_start: int
    loading_before: float | None
    loading_after: float | None
    max_loading_percent: float
    ordered_kw: float
    unmapped_kw: float

    @property
    def relieved(self) -> bool:
        return self.loading_after is not None and self.loading_after <= self.max_loading_percent


def latest_revisions(orders: Sequence[FlexOrder]) -> list[FlexOrder]:
    """The highest revision of every order id, cancelled orders left out."""
    latest: dict[str, FlexOrder] = {}
    for o in orders:
        if o.order_id not in latest or o.revision > latest[o.order_id].revision:
            latest[o.order_id] = o
    return [o for o in latest.values() if o.status != "CANCELLED"]


def with_orders(
    model: GridModel, injections: Injections, slot_starts_ms: Sequence[int], orders: Sequence[FlexOrder]
) -> tuple[Injections, np.ndarray, np.ndarray]:
    """(injections with the orders applied, ordered kW per slot on the grid, ordered kW per slot off the grid)."""
    col = {p: j for j, p in enumerate(model.prosumer_ids)}
    row = {int(t): k for k, t in enumerate(slot_starts_ms)}
    kw = injections.prosumer_kw.copy()
    on, off = np.zeros(len(row)), np.zeros(len(row))
    for o in latest_revisions(orders):
        sign = -1.0 if Direction(o.direction) is Direction.REDUCE else 1.0
        for a in o.allocations:
            k = row.get(int(a.slot_start))
            if k is None:
                continue
            if a.prosumer_id in col:
                kw[k, col[a.prosumer_id]] += sign * a.kw
                on[k] += sign * a.kw
            else:
                off[k] += sign * a.kw
    return Injections(kw, injections.load_kw, injections.load_kvar, injections.sgen_kw), on, off


def expected_relief(
    model: GridModel,
    engine: PowerFlowEngine,
    injections: Injections,
    slot_starts_ms: Sequence[int],
    before: Sequence[SlotCongestion],
    orders: Sequence[FlexOrder],
) -> list[ExpectedRelief]:
    """For every slot an order touches and every congestion point: loading before (from ``before``) and after."""
    after_inj, on, off = with_orders(model, injections, slot_starts_ms, orders)
    touched = [k for k in range(len(slot_starts_ms)) if on[k] or off[k]]
    if not touched:
        return []
    rows = np.array(touched)
    starts = [int(slot_starts_ms[k]) for k in touched]
    after = forecast_congestion(model, engine, after_inj.take(rows), starts)
    was = {(s.congestion_point_id, s.slot_start): s.loading_percent for s in before}
    return [
        ExpectedRelief(
            congestion_point_id=s.congestion_point_id,
            slot_start=s.slot_start,
            loading_before=was.get((s.congestion_point_id, s.slot_start)),
            loading_after=s.loading_percent,
            max_loading_percent=s.max_loading_percent,
            ordered_kw=float(on[touched[starts.index(s.slot_start)]]),
            unmapped_kw=float(off[touched[starts.index(s.slot_start)]]),
        )
        for s in after
    ]
