"""The e2e benchmark's flex load (tools/sim/flex_bench_load.py): enrolment, deviators, signed requests the desk
accepts, and meters following the latest order revision."""

from __future__ import annotations

import pytest

from streams.flex.authentication import authenticate
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.validation import validate_request
from tools.sim.flex_bench_load import BenchMeters, FlexLoad, next_slot_start
from tools.sim.flex_scenario import BASELINE_KW, T0, pid, sim_dsos

NOW = T0 - 3_600_000
MIN = 60_000


def order(revision: int, allocs: list[tuple[str, int, float]]) -> FlexOrder:
    return FlexOrder(
        order_id="ord-1",
        offer_id="off-1",
        request_id="req-1",
        revision=revision,
        direction=Direction.REDUCE,
        status="ACTIVE" if revision == 1 else "AMENDED",
        allocations=tuple(OrderAllocation(p, t, kw, BASELINE_KW) for p, t, kw in allocs),
        slot_minutes=1,
        created_at=NOW,
    )


def test_enrolled_share_dealt_round_robin_over_areas():
    load = FlexLoad(meters=1000, enrolled_share=0.1, areas=4)
    reg = load.registry()
    assert load.enrolled == 100 and len(reg.records) == 100
    assert reg.get(pid(5)).area_id == "bench-1" and load.area_of(5) == "bench-1"
    assert load.area_of(100) is None and reg.get(pid(100)) is None
    assert all(len(reg.in_area(f"bench-{k}")) == 25 for k in range(4))


def test_deviators_are_the_cheapest_of_every_area_then_every_nth():
    load = FlexLoad(meters=1000, enrolled_share=0.1, areas=4, deviating_share=0.2)
    deviators = [i for i in range(1000) if load.deviates(i)]
    assert deviators[:4] == [0, 1, 2, 3]  # rank 0 of each area: first in merit order, so surely ordered
    assert deviators[4:8] == [20, 21, 22, 23]  # rank 5
    assert len(deviators) == 20
    assert not any(FlexLoad(1000, deviating_share=0.0).deviates(i) for i in range(100))


def test_requests_are_signed_valid_and_ask_a_share_of_each_area():
    load = FlexLoad(meters=1000, enrolled_share=0.1, areas=4, request_share=0.3)
    first = next_slot_start(NOW, 20_000)
    reqs = load.requests(first, 3, NOW)
    assert [r.area_id for r in reqs] == [f"bench-{k}" for k in range(4)]
    for r in reqs:
        assert authenticate(r, sim_dsos()) is None
        assert validate_request(r, NOW, load.registry()) == []
        assert r.slot_starts() == [first, first + MIN, first + 2 * MIN]
        assert [s.kw for s in r.slots] == [22.5] * 3  # 30 % of 25 prosumers x 3 kW
    with pytest.raises(ValueError, match="aligned"):
        load.requests(first + 1, 3, NOW)


def test_next_slot_start():
    assert next_slot_start(T0, 0) == T0
    assert next_slot_start(T0 + 1, 0) == T0 + MIN
    assert next_slot_start(T0 - 30_000, 20_000) == T0
    assert next_slot_start(T0 - 10_000, 20_000) == T0 + MIN


def test_meters_follow_the_latest_revision_deviators_do_not():
    meters = BenchMeters(FlexLoad(meters=100, enrolled_share=0.1, areas=2, deviating_share=0.5))
    seen = meters.orders
    assert meters.reading_kw(3, T0 - 5_000) == BASELINE_KW  # no order yet
    assert seen.add(order(1, [(pid(3), T0, 2.0), (pid(0), T0, 3.0), (pid(7), T0 + MIN, 1.0)]))
    assert meters.reading_kw(3, T0) == BASELINE_KW - 2.0  # switched at slot start
    assert meters.load.deviates(0) and meters.reading_kw(0, T0) == BASELINE_KW
    assert meters.reading_kw(7, T0) == BASELINE_KW  # allocated only in the next slot
    # re-dispatch of p00's 3 kW, partly to p07
    assert seen.add(order(2, [(pid(3), T0, 2.0), (pid(7), T0, 2.0)]))
    assert not seen.add(order(1, [(pid(3), T0, 0.5)]))  # a replayed older revision changes nothing
    assert meters.reading_kw(3, T0 + 5_000) == pytest.approx(BASELINE_KW - 2.0)  # on target: stays
    # p07 learns its 2 kW after its reading at T0 and sets 2 kW from there; its meter shows a ramp (1 kW average
    # delivered over the first 5 s), so it catches up the rest over the 55 s left: (2 x 60 - 1 x 5) / 55 kW
    assert meters.reading_kw(7, T0 + 5_000) == pytest.approx(BASELINE_KW - 2.0)
    assert meters.reading_kw(7, T0 + 10_000) == pytest.approx(BASELINE_KW - (2.0 * 60 - 1.0 * 5) / 55)
    assert meters.reading_kw(50, T0) == pytest.approx(0.5 + 50 * 0.01)  # not enrolled


def test_catch_up_is_capped_at_the_curtailable_kw():
    meters = BenchMeters(FlexLoad(meters=100, enrolled_share=0.1, areas=2, deviating_share=0.0))
    meters.reading_kw(3, T0 - 5_000)
    meters.reading_kw(3, T0 + 30_000)  # half the slot passes before the order is seen
    meters.orders.add(order(1, [(pid(3), T0, 3.0)]))
    assert meters.reading_kw(3, T0 + 35_000) == BASELINE_KW - 3.0  # would need 3 kW x 60 / 30, can give 3


def test_shares_out_of_range_fail_fast():
    with pytest.raises(ValueError, match="enrolled_share"):
        FlexLoad(100, enrolled_share=1.5)
