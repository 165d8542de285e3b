"""Offer building on mixed assets, both directions, and the risk margin."""

from __future__ import annotations

import pytest

from streams.flex.enrolment import (
    ContractTerms,
    CurtailableLoad,
    EvCharger,
    ProsumerRecord,
    PvSystem,
    Registry,
)
from streams.flex.model import Direction, SlotOutlook
from streams.flex.offers import OfferParams, build_offer, unit_cost_micro_per_kw
from streams.flex.requests import FlexRequest, RequestSlot
from tools.sim.flex_scenario import T0


def terms(rate: int) -> ContractTerms:
    return ContractTerms(aggregator_id="agg", incentive_micro_per_kwh=rate, multiplier=1.0)


def request(direction: Direction, kw: float) -> FlexRequest:
    return FlexRequest("r", "dso", "a", direction, (RequestSlot(T0, kw),), 100_000, T0 - 1, T0 - 2)


def test_increase_request_uses_pv_curtailment_and_ev_boost():
    reg = Registry()
    reg.upsert(ProsumerRecord("pv", "a", terms(100_000), (PvSystem("pv1", 10.0),)))
    reg.upsert(ProsumerRecord("ev", "a", terms(150_000), (EvCharger("ev1", 32, 16, 1),)))
    outlook = lambda p, t: SlotOutlook(baseline_kw=-2.0 if p == "pv" else 3.0, pv_kw_per_kwp=0.6)  # noqa: E731
    offer = build_offer(request(Direction.INCREASE, 8.0), reg.in_area("a"), outlook, T0 - 10)
    alloc = {a.prosumer_id: a.kw for a in offer.allocations}
    # PV curtailment is cheaper: all 6 kW of it; the EV adds the remaining 2 kW (it could add 3.68)
    assert alloc == {"pv": 6.0, "ev": 2.0}
    assert offer.status == "FULL"
    assert offer.cost_micro == round(6 * 100_000 * 0.25 + 2 * 150_000 * 0.25)


def test_reduce_request_cannot_use_pv():
    reg = Registry()
    reg.upsert(ProsumerRecord("pv", "a", terms(100_000), (PvSystem("pv1", 10.0),)))
    offer = build_offer(
        request(Direction.REDUCE, 1.0), reg.in_area("a"), lambda p, t: SlotOutlook(1.0, 0, 0.6), T0 - 10
    )
    assert offer.status == "INFEASIBLE" and offer.slots[0].shortfall_kw == 1.0


def test_risk_margin_prefers_certain_forecasts():
    rec = ProsumerRecord("x", "a", terms(100_000))
    certain = unit_cost_micro_per_kw(rec, SlotOutlook(baseline_kw=4.0, sigma_kw=0.0), 15, 50_000)
    risky = unit_cost_micro_per_kw(rec, SlotOutlook(baseline_kw=4.0, sigma_kw=2.0), 15, 50_000)
    assert certain == pytest.approx(100_000 * 0.25)
    assert risky == pytest.approx((100_000 + 50_000 * 0.5) * 0.25)  # u = 2/4

    reg = Registry()
    for pid in ("sure", "unsure"):
        reg.upsert(ProsumerRecord(pid, "a", terms(100_000), (CurtailableLoad("l", 3.0),)))
    outlook = lambda p, t: SlotOutlook(baseline_kw=4.0, sigma_kw=0.0 if p == "sure" else 2.0)  # noqa: E731
    offer = build_offer(request(Direction.REDUCE, 4.0), reg.in_area("a"), outlook, T0 - 10, OfferParams())
    assert {a.prosumer_id: a.kw for a in offer.allocations} == {"sure": 3.0, "unsure": 1.0}


def test_the_offer_does_not_depend_on_the_order_the_registry_was_read():
    """Workers read the enrolment registry's partitions in different orders: same candidates, same offer."""
    from streams.flex.enrolment import Registry
    from tools.sim.flex_scenario import flat_outlook, portfolio, reduce_request

    records = list(portfolio(8).records.values())
    offers = []
    for order in (records, records[::-1], records[3:] + records[:3]):
        registry = Registry()
        for r in order:
            registry.upsert(r)
        offers.append(build_offer(reduce_request(kw=7.5), registry.in_area("terni-1"), flat_outlook, T0))
    assert offers[0].allocations[0].prosumer_id == "p00"
    assert offers[1] == offers[0] and offers[2] == offers[0]
