"""The per-session state machine on MemoryState, without a broker: gate closure by event time and ticks,
redelivery, empty slots, settlement from intervals, state that stays per session and goes when done."""

from __future__ import annotations

from market_fixtures import MemoryState, Q, interval, order, processor

from streams.market.config import MarketConfig
from streams.market.orders import Side
from streams.market.processor import (
    TOPIC_CLEARING,
    TOPIC_ORDERS_ACCEPTED,
    TOPIC_REJECTIONS,
    TOPIC_SETTLEMENT,
    TOPIC_TRADES,
)
from streams.market.session_state import Phase, SessionStore

SLOT = 1_795_435_200_000
CFG = MarketConfig()
SESSION = CFG.session_id(SLOT)


def topics(outs) -> list[str]:
    return [o.topic for o in outs]


def bid_and_offer():
    return order(CFG, 0, Side.BID, SLOT, SLOT - 2 * Q), order(CFG, 1, Side.OFFER, SLOT, SLOT - 2 * Q)


def test_clears_once_when_event_time_passes_the_gate_not_on_order_arrival():
    p, state = processor(CFG), MemoryState()
    bid, offer = bid_and_offer()
    assert topics(p.on_order(bid, SLOT - 2 * Q, state, SLOT - 2 * Q)) == [TOPIC_ORDERS_ACCEPTED]
    assert p.on_order(bid, SLOT - 2 * Q + 1, state, SLOT - 2 * Q + 1) == []  # redelivery: no new event
    p.on_order(offer, SLOT - 2 * Q + 2, state, SLOT - 2 * Q + 2)
    assert len(p.book(SLOT, state)) == 2
    assert p.on_tick(SLOT - Q - 1, state) == []
    outs = p.on_tick(SLOT - Q, state)
    assert topics(outs) == [TOPIC_CLEARING, TOPIC_TRADES]
    assert outs[0].record["price_micro_per_kwh"] == 100_000 and outs[1].record["quantity_wh"] == 1000
    assert outs[0].key == outs[1].key == SESSION
    assert p.on_tick(SLOT + Q, state) == []  # cleared exactly once; settlement waits for meter data
    assert p.book(SLOT, state) == []


def test_backdated_order_arriving_after_the_gate_is_rejected_and_the_slot_still_clears():
    p, state = processor(CFG), MemoryState()
    p.on_order(order(CFG, 0, Side.BID, SLOT, SLOT - 2 * Q), SLOT - 2 * Q, state, SLOT - 2 * Q)
    outs = p.on_order(order(CFG, 1, Side.OFFER, SLOT, SLOT - 2 * Q), SLOT - Q + 5, state, SLOT - Q + 5)
    assert topics(outs) == [TOPIC_CLEARING, TOPIC_REJECTIONS]
    assert outs[0].record["cleared_wh"] == 0 and outs[0].record["price_micro_per_kwh"] is None
    assert outs[1].record["code"] == "GATE_CLOSED" and outs[1].record["rejected_at"] == SLOT - Q + 5


def test_an_order_moves_only_its_own_session_clock():
    """Sessions are independent (the result does not depend on which sessions share a partition): an order of
    the next slot arriving after this slot's gate does not clear it; the tick does."""
    p, state = processor(CFG), MemoryState()
    bid, offer = bid_and_offer()
    p.on_order(bid, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p.on_order(offer, SLOT - 2 * Q, state, SLOT - 2 * Q)
    later = order(CFG, 0, Side.BID, SLOT + Q, SLOT - Q + 10, nonce=1)
    assert topics(p.on_order(later, SLOT - Q + 20, state, SLOT - Q + 20)) == [TOPIC_ORDERS_ACCEPTED]
    assert topics(p.on_tick(SLOT - Q + 30, state)) == [TOPIC_CLEARING, TOPIC_TRADES]


def test_settles_when_the_slot_ended_and_every_trading_meter_reported():
    p, state = processor(CFG), MemoryState()
    for o in bid_and_offer():
        p.on_order(o, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p.on_tick(SLOT - Q, state)
    assert p.on_interval(interval("M1", SLOT, export_wh=600.0), SLOT + Q + 1, state, SLOT + Q + 1) == []
    outs = p.on_interval(interval("M0", SLOT, import_wh=1000.0), SLOT + Q + 2, state, SLOT + Q + 2)
    assert topics(outs) == [TOPIC_SETTLEMENT] * 3
    amounts = {o.record["party_id"]: o.record["amount_micro"] for o in outs}
    assert amounts == {"P0": -60_000, "P1": 60_000 - 20_000, "POOL": 20_000}  # 400 Wh short x 0.05
    assert p.on_interval(interval("M0", SLOT, import_wh=1000.0), SLOT + Q + 3, state, SLOT + Q + 3) == []


def test_interval_before_the_slot_end_waits_for_the_tick_at_the_slot_end():
    cfg = CFG.model_copy(update={"allowed_lateness_ms": 5 * 60_000})
    p, state = processor(cfg), MemoryState()
    for o in bid_and_offer():
        p.on_order(o, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p.on_tick(SLOT - Q + 5 * 60_000, state)  # gate + lateness
    for dev in ("M0", "M1"):
        assert p.on_interval(interval(dev, SLOT, export_wh=1000.0), SLOT + Q, state, SLOT + Q) == []
    assert p.on_tick(SLOT + Q + 5 * 60_000 - 1, state) == []
    assert topics(p.on_tick(SLOT + Q + 5 * 60_000, state)) == [TOPIC_SETTLEMENT] * 2


def test_a_higher_interval_version_replaces_the_first_and_a_lower_one_is_ignored():
    p, state = processor(CFG), MemoryState()
    for o in bid_and_offer():
        p.on_order(o, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p.on_tick(SLOT, state)
    t = SLOT + Q + 1
    p.on_interval(interval("M1", SLOT, export_wh=100.0), t, state, t)
    p.on_interval(interval("M1", SLOT, export_wh=900.0, version=2), t, state, t)
    p.on_interval(interval("M1", SLOT, export_wh=5.0, version=1), t, state, t)
    outs = p.on_interval(interval("M0", SLOT), t, state, t)
    assert {o.record["party_id"]: o.record["quantity_wh"] for o in outs} == {
        "P0": 900,
        "P1": 900,
        "POOL": 100,
    }


def test_session_state_is_dropped_when_done_and_the_header_expires():
    p, state = processor(CFG), MemoryState()
    for o in bid_and_offer():
        p.on_order(o, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p.on_tick(SLOT - Q, state)
    for dev in ("M0", "M1"):
        p.on_interval(interval(dev, SLOT, export_wh=1000.0), SLOT + Q + 1, state, SLOT + Q + 1)
    store = SessionStore(state)
    assert store.header(SESSION).phase is Phase.DONE
    session_keys = sorted(k for k in state.data if k.startswith(SESSION))
    assert session_keys == [SESSION, f"{SESSION}|a"]  # book, nonces, parties, meters, intervals, trades gone
    assert p.on_order(bid_and_offer()[0], SLOT + Q + 2, state, SLOT + Q + 2) == []  # redelivered: duplicate
    # a late order of the done session is refused; after expiry the header is gone too
    late = order(CFG, 0, Side.BID, SLOT, SLOT - 2 * Q, nonce=9)
    assert p.on_order(late, SLOT + Q + 2, state, SLOT + Q + 2)[0].record["code"] == "GATE_CLOSED"
    expiry = SLOT + Q + p.limits.max_past_ms
    p.on_tick(expiry, state)
    assert [k for k in state.data if not k.startswith("due|")] == []


def test_a_session_without_accepted_orders_keeps_no_state():
    """A rejected order leaves nothing; a participant's interval is kept until the session expires (its orders
    may still be in flight), another meter's interval is not the market's."""
    p, state = processor(CFG), MemoryState()
    late = order(CFG, 0, Side.BID, SLOT, SLOT - 2 * Q)
    assert topics(p.on_order(late, SLOT - Q, state, SLOT - Q)) == [TOPIC_REJECTIONS]
    assert state.data == {}
    assert p.on_interval(interval("M-other", SLOT), SLOT + Q, state, SLOT + Q) == []
    assert state.data == {}
    assert p.on_interval(interval("M0", SLOT), SLOT + Q, state, SLOT + Q) == []
    assert sorted(k for k in state.data if not k.startswith("due|")) == [
        f"{SESSION}|e",
        f"{SESSION}|i|M0|{SLOT}",
    ]
    assert p.on_tick(SLOT + Q + p.limits.max_past_ms - 1, state) == []
    assert f"{SESSION}|e" in state.data
    p.on_tick(SLOT + Q + p.limits.max_past_ms, state)
    assert [k for k in state.data if not k.startswith("due|")] == []


def test_intervals_before_the_orders_settle_the_same_as_after():
    """A session's orders and intervals come through different topics in no guaranteed order (a replay, a
    lagging partition): intervals processed before their parties' orders settle the session all the same."""
    bid, offer = bid_and_offer()
    m0, m1 = interval("M0", SLOT, import_wh=1000.0), interval("M1", SLOT, export_wh=600.0)
    t = SLOT + Q + 1

    in_order, state = processor(CFG), MemoryState()
    for o in (bid, offer):
        in_order.on_order(o, SLOT - 2 * Q, state, t)
    expected = in_order.on_tick(t, state) + in_order.on_interval(m1, t, state, t)
    expected = [o for o in expected + in_order.on_interval(m0, t, state, t) if o.topic == TOPIC_SETTLEMENT]

    reordered, state = processor(CFG), MemoryState()
    assert reordered.on_interval(m1, t, state, t) == []  # no order yet: kept
    reordered.on_order(bid, SLOT - 2 * Q, state, t)
    assert reordered.on_interval(m0, t, state, t) == []  # M0's party ordered, M1's not yet: kept
    outs = reordered.on_order(offer, SLOT - 2 * Q, state, t) + reordered.on_tick(t, state)
    assert [o for o in outs if o.topic == TOPIC_SETTLEMENT] == expected
    assert topics(expected) == [TOPIC_SETTLEMENT] * 3
    assert sorted(k for k in state.data if not k.startswith("due|")) == [SESSION, f"{SESSION}|a"]


def test_a_new_processor_over_the_same_state_continues_where_the_last_stopped():
    """All state is in the store (what the changelog restores): a restart loses nothing."""
    state = MemoryState()
    bid, offer = bid_and_offer()
    processor(CFG).on_order(bid, SLOT - 2 * Q, state, SLOT - 2 * Q)
    p = processor(CFG)
    assert p.on_order(bid, SLOT - 2 * Q, state, SLOT - 2 * Q) == []  # still a duplicate
    p.on_order(offer, SLOT - 2 * Q, state, SLOT - 2 * Q)
    assert topics(processor(CFG).on_tick(SLOT - Q, state)) == [TOPIC_CLEARING, TOPIC_TRADES]
