"""An order revision cut into per-prosumer allocations: a new order to all its prosumers, an amendment only to the
prosumers whose share it changed."""

from __future__ import annotations

from streams.flex.allocations import allocation_outs
from streams.flex.orders import Direction, FlexOrder, OrderAllocation

T0 = 1_796_000_000_000
SLOT = 60_000


def order(shares: dict[str, list[float]], revision: int = 1, status: str = "ACTIVE") -> FlexOrder:
    allocations = tuple(
        OrderAllocation(pid, T0 + i * SLOT, kw, 5.0)
        for pid, kws in shares.items()
        for i, kw in enumerate(kws)
    )
    return FlexOrder("ord-1", "off-1", "req-1", revision, Direction("REDUCE"), status, allocations, 1, T0)


def sent(outs) -> dict[str, list[float]]:
    return {o.key: [s["kw"] for s in o.record["slots"]] for o in outs}


def test_a_new_order_goes_to_every_prosumer():
    first = order({"p1": [1.0, 1.0], "p2": [2.0, 2.0], "p3": [1.5, 1.5]})
    assert sent(allocation_outs(first)) == {"p1": [1.0, 1.0], "p2": [2.0, 2.0], "p3": [1.5, 1.5]}


def test_an_amendment_goes_only_to_the_changed_and_released_prosumers():
    first = order({"p1": [1.0, 1.0], "p2": [2.0, 2.0], "p3": [1.5, 1.5], "p4": [1.0, 1.0]})
    # p1 deviates: keeps its running slot, its next slot moves to p3; p4 is released; p2 is untouched
    amended = order({"p1": [1.0], "p2": [2.0, 2.0], "p3": [1.5, 2.5], "p4": []}, revision=2, status="AMENDED")
    outs = allocation_outs(amended, first)
    assert sent(outs) == {"p1": [1.0], "p3": [1.5, 2.5], "p4": []}
    assert {o.record["revision"] for o in outs} == {2}
    assert [o.key for o in outs] == sorted(o.key for o in outs)


def test_a_status_change_other_than_an_amendment_goes_to_every_prosumer():
    first = order({"p1": [1.0], "p2": [2.0]})
    cancelled = order({"p1": [1.0], "p2": [2.0]}, revision=2, status="CANCELLED")
    assert set(sent(allocation_outs(cancelled, first))) == {"p1", "p2"}
