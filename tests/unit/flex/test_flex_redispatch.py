from __future__ import annotations

import pytest

from streams.flex.offers import build_offer
from streams.flex.orders import create_order
from streams.flex.redispatch import plan_redispatch
from tools.sim.flex_scenario import SLOT_MS, T0, flat_outlook, portfolio, reduce_request


def setup(n=6, kw=6.0, n_slots=2):
    reg = portfolio(n)
    req = reduce_request(kw=kw, n_slots=n_slots)
    offer = build_offer(req, reg.in_area(req.area_id), flat_outlook, now=T0 - 1)
    order = create_order(offer, req, flat_outlook, now=T0 - 1)
    committed = {(a.prosumer_id, a.slot_start): a.kw for a in order.allocations}
    return reg, req, order, lambda p, t: committed.get((p, t), 0.0)


def test_future_slot_released_and_replaced_by_next_cheapest():
    reg, req, order, committed = setup()
    assert {a.prosumer_id for a in order.allocations} == {"p00", "p01"}
    plan = plan_redispatch(order, req, {"p00": None}, T0 - 1, reg.records.values(), flat_outlook, committed)
    assert plan.missing_kw == {T0: 3.0, T0 + SLOT_MS: 3.0}
    new = plan.order
    assert new.revision == 2 and new.status == "AMENDED"
    assert {(a.prosumer_id, a.slot_start, a.kw) for a in new.allocations} == {
        ("p01", T0, 3.0),
        ("p01", T0 + SLOT_MS, 3.0),
        ("p02", T0, 3.0),
        ("p02", T0 + SLOT_MS, 3.0),
    }
    assert plan.residual_shortfall_kw == {T0: 0.0, T0 + SLOT_MS: 0.0}


def test_running_slot_gap_uses_scaled_headroom():
    reg, req, order, committed = setup(n=3)
    now = T0 + 450_000  # half-way: others can add at most 3 kW x 1/2 as slot average
    plan = plan_redispatch(order, req, {"p00": 1.0}, now, reg.records.values(), flat_outlook, committed)
    assert plan.missing_kw == {T0: 2.0, T0 + SLOT_MS: 3.0}
    new = plan.order
    assert new.allocation("p00", T0).kw == 3.0  # kept (will be penalised), released in the future slot
    assert new.allocation("p00", T0 + SLOT_MS) is None
    assert new.allocation("p02", T0).kw == pytest.approx(1.5)
    assert new.allocation("p02", T0 + SLOT_MS).kw == 3.0
    assert plan.residual_shortfall_kw == {T0: 0.5, T0 + SLOT_MS: 0.0}


def test_nothing_missing_returns_none():
    reg, req, order, committed = setup(n_slots=1)
    # on target in the running (only) slot: nothing to move
    assert (
        plan_redispatch(order, req, {"p00": 3.0}, T0 + 1, reg.records.values(), flat_outlook, committed)
        is None
    )
    later = T0 + SLOT_MS  # slot closed
    assert (
        plan_redispatch(order, req, {"p00": 0.0}, later, reg.records.values(), flat_outlook, committed)
        is None
    )
