"""The stream state machine without a broker: gate closure by event time, redelivery, empty slots."""

from __future__ import annotations

from eth_account import Account

from streams.market.config import MarketConfig
from streams.market.market_order import OrderTerms
from streams.market.orders import EnergyType, Side
from streams.market.participants import Participant, ParticipantRegistry
from streams.market.processor import TOPIC_CLEARING, TOPIC_REJECTIONS, TOPIC_TRADES, MarketProcessor
from streams.market.signing import sign_order

SLOT = 1_795_435_200_000
Q = 900_000
CFG = MarketConfig()
KEYS = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(2)]


def order(i: int, side: Side, client_ts: int = SLOT - 2 * Q, nonce: int = 0):
    t = OrderTerms(
        f"P{i}",
        KEYS[i].address,
        CFG.session_id(SLOT),
        side,
        SLOT,
        15,
        1000,
        100_000,
        EnergyType.ANY,
        client_ts,
        nonce,
    )
    return sign_order(t, KEYS[i].key, CFG.chain_id)


def processor() -> MarketProcessor:
    reg = ParticipantRegistry(
        [
            Participant(participant_id=f"P{i}", prosumer_id=f"x{i}", eth_address=k.address)
            for i, k in enumerate(KEYS)
        ]
    )
    return MarketProcessor(CFG, reg)


def topics(outs) -> list[str]:
    return [o.topic for o in outs]


def test_clears_once_when_event_time_passes_the_gate_not_on_order_arrival():
    p = processor()
    bid, offer = order(0, Side.BID), order(1, Side.OFFER)
    assert len(p.on_order(bid, SLOT - 2 * Q, SLOT - 2 * Q)) == 1
    assert p.on_order(bid, SLOT - 2 * Q + 1, SLOT - 2 * Q + 1) == []  # redelivery: no new event
    p.on_order(offer, SLOT - 2 * Q + 2, SLOT - 2 * Q + 2)
    assert len(p.book(SLOT)) == 2
    assert p.on_tick(SLOT - Q - 1) == []
    outs = p.on_tick(SLOT - Q)
    assert topics(outs) == [TOPIC_CLEARING, TOPIC_TRADES]
    assert outs[0].record["price_micro_per_kwh"] == 100_000 and outs[1].record["quantity_wh"] == 1000
    assert p.on_tick(SLOT) == []  # cleared exactly once; settlement waits for meter data


def test_backdated_order_arriving_after_the_gate_is_rejected_and_the_slot_still_clears():
    p = processor()
    p.on_order(order(0, Side.BID), SLOT - 2 * Q, SLOT - 2 * Q)
    outs = p.on_order(order(1, Side.OFFER, client_ts=SLOT - 2 * Q), SLOT - Q + 5, SLOT - Q + 5)
    assert topics(outs) == [TOPIC_CLEARING, TOPIC_REJECTIONS]
    assert outs[0].record["cleared_wh"] == 0 and outs[0].record["price_micro_per_kwh"] is None
    assert outs[1].record["code"] == "GATE_CLOSED"
