"""Poisoning cases of issue 14 on the market's entry points, without a broker.

Before validation at the door, the gate clock advanced on an order's arrival time before the order was
validated: one unsigned order stamped in 2100 closed every gate for good; quantities of 1e15 Wh and 2^63-1 Wh
were accepted (then an int64 overflow in clearing). Now only an order that passed its bounds and its
participant/signature checks moves the clock, and out-of-bounds quantities are rejected.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from market_fixtures import MemoryState, interval, processor
from market_fixtures import order as signed_order

from edream.runtime.contract import Record
from edream.serde import DecodeError, Serde
from streams.market.config import MarketConfig
from streams.market.orders import Side
from streams.market.processor import TOPIC_ORDERS_ACCEPTED, TOPIC_REJECTIONS
from streams.market.session_state import SessionStore
from streams.market.stream import MarketStage

SERDE = Serde()
CFG = MarketConfig()
Q = 900_000
Y2100 = 4_102_444_800_000  # 2100-01-01T00:00Z
NOW = int(time.time() * 1000)  # the stream path uses the real wall clock
SLOT = NOW - NOW % Q + 4 * Q  # gate closes 45-60 min from now
SESSION = CFG.session_id(SLOT)


def order(i: int, side: Side, *, quantity_wh: int = 1000, nonce: int = 0, slot: int = SLOT):
    return signed_order(CFG, i, side, slot, NOW - 60_000, quantity_wh=quantity_wh, nonce=nonce)


def codes(outs) -> list[str]:
    return [o.record["code"] for o in outs if o.topic == TOPIC_REJECTIONS]


def clock(state):
    """The session's (watermark, number of orders in its book)."""
    header = SessionStore(state).header(SESSION)
    return None if header is None else (header.watermark, header.n_orders)


@pytest.mark.parametrize("signed", [False, True])
def test_order_stamped_in_2100_is_rejected_and_closes_no_gate(signed):
    p, state = processor(CFG), MemoryState()
    p.on_order(order(0, Side.BID), NOW, state)
    before = clock(state)
    poison = order(1, Side.OFFER, nonce=7)
    if not signed:
        poison = replace(poison, signature="")
    outs = p.on_order(poison, Y2100, state)
    assert codes(outs) == ["EVENT_TIME_OUT_OF_BOUNDS"]
    assert outs[0].record["rejected_at"] < Y2100  # stamped with the wall clock, not the poisoned time
    assert clock(state) == before == (NOW, 1)
    # later orders for the open slot are still accepted
    assert [o.topic for o in p.on_order(order(1, Side.OFFER), NOW + 1000, state)] == [TOPIC_ORDERS_ACCEPTED]


def test_unsigned_order_does_not_move_the_clock_even_within_bounds():
    p, state = processor(CFG), MemoryState()
    p.on_order(order(0, Side.BID), NOW, state)
    outs = p.on_order(replace(order(1, Side.OFFER), signature=""), NOW + 60_000, state)
    assert codes(outs) == ["BAD_SIGNATURE"]
    assert clock(state) == (NOW, 1)


def record(topic: str, key: bytes | None, value: bytes, ts: int) -> Record:
    return Record(topic, 0, 0, key, value, ts)


def test_order_arriving_through_the_stage_with_a_2100_timestamp_keeps_every_gate_open():
    """The production entry point: broker timestamp in 2100, wall clock now."""
    stage, state = MarketStage(processor(CFG), SERDE, {}), MemoryState()
    enc = SERDE.encode
    key = SESSION.encode()
    stage.on_record(
        record("market.orders.v1", key, enc("MarketOrder", order(0, Side.BID).to_avro()), NOW), state
    )
    poisoned = replace(order(1, Side.OFFER, nonce=3), signature="")
    out = stage.on_record(
        record("market.orders.v1", key, enc("MarketOrder", poisoned.to_avro()), Y2100), state
    )
    assert [SERDE.decode(e.value)[1]["code"] for e in out] == ["EVENT_TIME_OUT_OF_BOUNDS"]
    assert clock(state) == (NOW, 1)
    out = stage.on_record(
        record("market.orders.v1", key, enc("MarketOrder", order(1, Side.OFFER).to_avro()), NOW), state
    )
    assert [SERDE.decode(e.value)[0] for e in out] == ["MarketOrder"]


@pytest.mark.parametrize("quantity_wh", [10**15, 2**63 - 1])
def test_absurd_quantity_is_rejected_and_never_reaches_clearing(quantity_wh):
    p, state = processor(CFG), MemoryState()
    bid = order(0, Side.BID, quantity_wh=quantity_wh)
    offer = order(1, Side.OFFER, quantity_wh=quantity_wh)
    assert codes(p.on_order(bid, NOW, state) + p.on_order(offer, NOW, state)) == ["QUANTITY_TOO_LARGE"] * 2
    assert p.book(SLOT, state) == []
    clearing = [o.record for o in p.on_tick(CFG.gate_closure(SLOT), state) if o.schema == "ClearingResult"]
    assert clearing == [] and state.data == {}  # no accepted order: the session never got state


def test_slot_in_2100_is_rejected_beyond_the_horizon():
    p, state = processor(CFG), MemoryState()
    outs = p.on_order(order(0, Side.BID, slot=Y2100), NOW, state)
    assert codes(outs) == ["BEYOND_HORIZON"] and state.data == {}


def test_interval_stamped_in_2100_is_dead_lettered_and_moves_no_clock():
    p, state = processor(CFG), MemoryState()
    p.on_order(order(0, Side.BID), NOW, state)
    with pytest.raises(DecodeError, match="arrival_time"):
        p.on_interval(interval("M0", SLOT), Y2100, state)
    assert clock(state) == (NOW, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [("export_wh", float("nan")), ("import_wh", -1.0), ("interval_start", SLOT + 1), ("device_id", "")],
)
def test_interval_with_a_bad_field_is_dead_lettered_and_moves_no_clock(field, value):
    p, state = processor(CFG), MemoryState()
    p.on_order(order(0, Side.BID), NOW, state)
    with pytest.raises(DecodeError, match=field):
        p.on_interval({**interval("M0", SLOT), field: value}, NOW + 1000, state)
    assert clock(state) == (NOW, 1)


def test_order_whose_message_key_is_not_its_session_is_dead_lettered():
    """Its session's state would be split over two partitions: the stage refuses it before any state."""
    stage, state = MarketStage(processor(CFG), SERDE, {}), MemoryState()
    value = SERDE.encode("MarketOrder", order(0, Side.BID).to_avro())
    for key in (b"another-session", None):
        with pytest.raises(DecodeError, match="session_id"):
            stage.on_record(record("market.orders.v1", key, value, NOW), state)
    with pytest.raises(DecodeError):
        stage.on_record(record("market.orders.v1", SESSION.encode(), b"\x00garbage", NOW), state)
    assert state.data == {}
