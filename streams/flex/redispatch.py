"""Re-dispatch (LL-UC08 step 12): cover deviating prosumers' shortfall with other prosumers' headroom.

For each deviating prosumer of an order:

* running slot (``slot_start <= now < slot_end``): missing = target - projected delivery (slot-average kW); the
  deviating allocation stays (it is settled with a penalty);
* future slots (``slot_start >= now``): the deviating prosumer's allocation is released and fully re-allocated;
* closed slots: untouched.

Other candidates' headroom is ``available - already committed``; in the running slot it is scaled by the
remaining fraction of the slot because the added kW are a slot average (the device delivers
``added * T / remaining`` for the rest of the slot, see :func:`streams.flex.dispatch.catch_up_kw`).
The same optimiser allocates at least cost; what it cannot cover is the residual shortfall.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from streams.flex.enrolment import ProsumerRecord
from streams.flex.offers import OfferParams, OutlookFn, build_problem
from streams.flex.optimiser import optimise
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.requests import FlexRequest, RequestSlot


@dataclass(frozen=True)
class RedispatchPlan:
    order: FlexOrder  # the amended revision
    missing_kw: dict[int, float]  # slot_start -> kW that had to be replaced
    residual_shortfall_kw: dict[int, float]  # slot_start -> kW nobody could cover


def plan_redispatch(
    order: FlexOrder,
    request: FlexRequest,
    deviating: Mapping[str, float | None],
    now: int,
    candidates: Iterable[ProsumerRecord],
    outlook: OutlookFn,
    committed_kw: Callable[[str, int], float],
    params: OfferParams | None = None,
    delivered_kw: Callable[[str, int], float] | None = None,
) -> RedispatchPlan | None:
    """Amended order, or None when nothing is missing.

    deviating: prosumer_id -> projected slot-average delivery (kW) in the running slot (None if not running).
    committed_kw(prosumer_id, slot_start): kW that prosumer already owes in any active order (this one included).
    delivered_kw(prosumer_id, slot_start): running slot only - flexibility already delivered, as energy / slot
    length (kW); what is still owed is ``committed - delivered``.
    """
    params = params or OfferParams()
    slot_ms = order.slot_ms
    missing: dict[int, float] = {}
    keep: list[OrderAllocation] = []
    for a in order.allocations:
        running = a.slot_start <= now < a.slot_start + slot_ms
        future = a.slot_start >= now
        if a.prosumer_id in deviating and future:
            missing[a.slot_start] = missing.get(a.slot_start, 0.0) + a.kw
            continue
        if a.prosumer_id in deviating and running:
            projected = deviating[a.prosumer_id]
            lack = a.kw - (projected if projected is not None else 0.0)
            if lack > 0:
                missing[a.slot_start] = missing.get(a.slot_start, 0.0) + lack
        keep.append(a)
    missing = {t: round(kw, 3) for t, kw in missing.items() if kw > 1e-3}
    if not missing:
        return None

    starts = sorted(missing)
    sub = replace(request, slots=tuple(RequestSlot(t, missing[t]) for t in starts))
    pool = [r for r in candidates if r.prosumer_id not in deviating]

    def headroom(pid: str, t: int, cap: float) -> float:
        if not t <= now < t + slot_ms:
            return max(0.0, cap - committed_kw(pid, t))
        owed = committed_kw(pid, t) - (delivered_kw(pid, t) if delivered_kw else 0.0)
        return max(0.0, cap * (t + slot_ms - now) / slot_ms - owed)

    problem = build_problem(sub, pool, outlook, params, [missing[t] for t in starts], headroom)
    sol = optimise(problem, params.backend)
    merged = {(a.prosumer_id, a.slot_start): a for a in keep}
    for i, j in zip(*np.nonzero(sol.allocation_kw > 0), strict=True):
        pid, t, add = problem.prosumer_ids[i], starts[j], float(sol.allocation_kw[i, j])
        old = merged.get((pid, t))
        if old is None:
            merged[(pid, t)] = OrderAllocation(pid, t, add, outlook(pid, t).baseline_kw)
        else:
            merged[(pid, t)] = replace(old, kw=round(old.kw + add, 3))
    allocations = tuple(sorted(merged.values(), key=lambda a: (a.slot_start, a.prosumer_id)))
    residual = {t: float(sol.shortfall_kw[j]) for j, t in enumerate(starts)}
    return RedispatchPlan(order.amended(allocations, now), missing, residual)
