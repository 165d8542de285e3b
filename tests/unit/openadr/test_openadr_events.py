"""Flex orders -> per-prosumer DR events: signs, contiguous intervals, ended slots, revisions, cancellation."""

from __future__ import annotations

from connectors.openadr.events import DispatchInterval, plan_order

Q = 900_000
T0 = 1_800_000_000_000 - (1_800_000_000_000 % Q)


def order(allocs, status="ACTIVE", direction="REDUCE", revision=1):
    return {
        "order_id": "o1",
        "revision": revision,
        "direction": direction,
        "status": status,
        "slot_minutes": 15,
        "allocations": [
            {"prosumer_id": p, "slot_start": s, "kw": kw, "baseline_kw": 5.0} for p, s, kw in allocs
        ],
    }


def test_reduce_order_gives_negative_delta_per_slot_with_gaps_filled_and_only_for_known_prosumers():
    plan = plan_order(
        order([("a", T0, 2.0), ("a", T0 + 3 * Q, 1.5), ("b", T0, 4.0), ("x", T0, 9.0)]), ["a", "b"], T0 - Q
    )
    assert [e.event_id for e in plan.add] == ["o1~r1~a", "o1~r1~b"] and plan.cancel == ()
    assert plan.add[0].intervals == (
        DispatchInterval(T0, 15, -2.0),
        DispatchInterval(T0 + Q, 15, 0.0),
        DispatchInterval(T0 + 2 * Q, 15, 0.0),
        DispatchInterval(T0 + 3 * Q, 15, -1.5),
    )
    assert plan.add[1].intervals == (DispatchInterval(T0, 15, -4.0),)


def test_increase_order_is_positive_and_same_slot_allocations_add_up():
    [event] = plan_order(order([("a", T0, 1.0), ("a", T0, 0.5)], direction="INCREASE"), ["a"], T0).add
    assert event.intervals == (DispatchInterval(T0, 15, 1.5),)


def test_ended_slots_are_dropped_and_an_order_that_has_ended_adds_nothing():
    plan = plan_order(order([("a", T0, 2.0), ("a", T0 + Q, 3.0)]), ["a"], T0 + Q)
    assert plan.add[0].intervals == (DispatchInterval(T0 + Q, 15, -3.0),)
    assert plan_order(order([("a", T0, 2.0)]), ["a"], T0 + Q).add == ()


def test_revision_is_a_new_event_of_the_same_key_and_cancelled_or_completed_orders():
    [r1] = plan_order(order([("a", T0, 2.0)]), ["a"], T0).add
    [r2] = plan_order(order([("a", T0, 1.0)], status="AMENDED", revision=2), ["a"], T0).add
    assert r1.key == r2.key == ("o1", "a") and r1.event_id != r2.event_id == "o1~r2~a"
    cancelled = plan_order(order([("a", T0, 2.0), ("b", T0, 1.0)], status="CANCELLED", revision=3), ["a"], T0)
    assert (cancelled.add, cancelled.cancel) == ((), (("o1", "a"),))
    completed = plan_order(order([("a", T0, 2.0)], status="COMPLETED"), ["a"], T0)
    assert (completed.add, completed.cancel) == ((), ())
