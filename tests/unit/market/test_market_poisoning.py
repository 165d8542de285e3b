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
from eth_account import Account

from edream.serde import DecodeError, Serde
from streams.market.config import MarketConfig
from streams.market.market_order import OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.participants import Participant, ParticipantRegistry
from streams.market.processor import TOPIC_ORDERS_ACCEPTED, TOPIC_REJECTIONS, MarketProcessor
from streams.market.signing import sign_order
from streams.market.stream import MarketStream

SERDE = Serde()
CFG = MarketConfig()
Q = 900_000
Y2100 = 4_102_444_800_000  # 2100-01-01T00:00Z
KEYS = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(2)]
NOW = int(time.time() * 1000)  # the stream path uses the real wall clock
SLOT = NOW - NOW % Q + 4 * Q  # gate closes 45-60 min from now


def order(i: int, side: Side, *, quantity_wh: int = 1000, nonce: int = 0, slot: int = SLOT):
    terms = OrderTerms(
        f"P{i}",
        KEYS[i].address,
        CFG.session_id(slot),
        side,
        slot,
        15,
        quantity_wh,
        100_000,
        EnergyType.ANY,
        NOW - 60_000,
        nonce,
    )
    return sign_order(terms, KEYS[i].key, CFG.chain_id)


def processor() -> MarketProcessor:
    reg = ParticipantRegistry(
        [
            Participant(participant_id=f"P{i}", prosumer_id=f"x{i}", eth_address=k.address)
            for i, k in enumerate(KEYS)
        ]
    )
    return MarketProcessor(CFG, reg)


def codes(outs) -> list[str]:
    return [o.record["code"] for o in outs if o.topic == TOPIC_REJECTIONS]


@pytest.mark.parametrize("signed", [False, True])
def test_order_stamped_in_2100_is_rejected_and_closes_no_gate(signed):
    p = processor()
    p.on_order(order(0, Side.BID), NOW)
    watermark = p.clock.watermark
    poison = order(1, Side.OFFER, nonce=7)
    if not signed:
        poison = replace(poison, signature="")
    outs = p.on_order(poison, Y2100)
    assert codes(outs) == ["EVENT_TIME_OUT_OF_BOUNDS"]
    assert outs[0].record["rejected_at"] < Y2100  # stamped with the wall clock, not the poisoned time
    assert p.clock.watermark == watermark and p.clock.open_slots == [SLOT]
    # later orders for the open slot are still accepted
    assert [o.topic for o in p.on_order(order(1, Side.OFFER), NOW + 1000)] == [TOPIC_ORDERS_ACCEPTED]


def test_unsigned_order_does_not_move_the_clock_even_within_bounds():
    p = processor()
    p.on_order(order(0, Side.BID), NOW)
    outs = p.on_order(replace(order(1, Side.OFFER), signature=""), NOW + 60_000)
    assert codes(outs) == ["BAD_SIGNATURE"]
    assert p.clock.watermark == NOW


def test_order_arriving_through_the_stream_with_a_2100_timestamp_keeps_every_gate_open():
    """The production entry point: broker timestamp in 2100, wall clock now."""
    stream = MarketStream(SERDE, processor())
    enc = SERDE.encode
    stream.handle("market.orders.v1", None, enc("MarketOrder", order(0, Side.BID).to_avro()), NOW)
    poisoned = replace(order(1, Side.OFFER, nonce=3), signature="")
    out = stream.handle("market.orders.v1", None, enc("MarketOrder", poisoned.to_avro()), Y2100)
    assert [SERDE.decode(v)[1]["code"] for _, _, v in out] == ["EVENT_TIME_OUT_OF_BOUNDS"]
    assert stream.processor.clock.open_slots == [SLOT]
    out = stream.handle("market.orders.v1", None, enc("MarketOrder", order(1, Side.OFFER).to_avro()), NOW)
    assert [SERDE.decode(v)[0] for _, _, v in out] == ["MarketOrder"]


@pytest.mark.parametrize("quantity_wh", [10**15, 2**63 - 1])
def test_absurd_quantity_is_rejected_and_never_reaches_clearing(quantity_wh):
    p = processor()
    bid = order(0, Side.BID, quantity_wh=quantity_wh)
    offer = order(1, Side.OFFER, quantity_wh=quantity_wh)
    assert codes(p.on_order(bid, NOW) + p.on_order(offer, NOW)) == ["QUANTITY_TOO_LARGE"] * 2
    assert p.book(SLOT) == []
    clearing = [o.record for o in p.on_tick(CFG.gate_closure(SLOT)) if o.schema == "ClearingResult"]
    assert clearing == []  # no accepted order: the slot was never opened


def test_slot_in_2100_is_rejected_beyond_the_horizon():
    p = processor()
    outs = p.on_order(order(0, Side.BID, slot=Y2100), NOW)
    assert codes(outs) == ["BEYOND_HORIZON"] and p.clock.open_slots == []


def test_interval_stamped_in_2100_is_dead_lettered_and_moves_no_clock():
    p = processor()
    p.on_order(order(0, Side.BID), NOW)
    with pytest.raises(DecodeError, match="arrival_time"):
        p.on_interval({"prosumer_id": "x0"}, Y2100)
    assert p.clock.watermark == NOW and p.clock.open_slots == [SLOT]
