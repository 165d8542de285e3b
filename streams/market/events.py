"""Domain results -> platform events (avro/Trade.avsc, ClearingResult.avsc, Rejection.avsc), deterministic ids."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from streams.flex.ids import stable_id
from streams.market.clearing import Clearing
from streams.market.market_order import MarketOrder
from streams.market.network_clearing import NetworkClearing
from streams.market.validation import Verdict


@dataclass(frozen=True)
class TradeEvent:
    """One matched quantity (Wh) between a bid and an offer at a price in micro-units per kWh."""

    trade_id: str
    session_id: str
    slot_start: int
    buy_order_id: str
    sell_order_id: str
    buyer_id: str
    seller_id: str
    quantity_wh: int
    price_micro_per_kwh: int

    def to_avro(self) -> dict[str, Any]:
        return {"event_id": self.trade_id, **asdict(self)}

    @classmethod
    def from_avro(cls, rec: dict[str, Any]) -> TradeEvent:
        return cls(**{k: v for k, v in rec.items() if k != "event_id"})


def trade_id(session_id: str, buy_order_id: str, sell_order_id: str) -> str:
    """Deterministic: a (bid, offer) pair trades at most once per session."""
    return stable_id("trd", session_id, buy_order_id, sell_order_id)


def trades_of(clearing: Clearing, session_id: str, slot_start: int) -> list[TradeEvent]:
    return [
        TradeEvent(
            trade_id(session_id, m.buy_order_id, m.sell_order_id),
            session_id,
            slot_start,
            m.buy_order_id,
            m.sell_order_id,
            m.buyer_id,
            m.seller_id,
            m.quantity_wh,
            m.price,
        )
        for m in clearing.matches
    ]


def clearing_record(
    clearing: Clearing,
    session_id: str,
    slot_start: int,
    gate_closed_at: int,
    network: NetworkClearing | None = None,
) -> dict[str, Any]:
    """ClearingResult event; ``event_id`` is deterministic per session (one result per session). ``network``: the
    grid-aware result ``clearing`` came from (its status, both welfares, binding limits, zonal prices)."""
    return {
        "event_id": stable_id("clr", session_id),
        "session_id": session_id,
        "slot_start": slot_start,
        "rule": clearing.rule.value,
        "price_micro_per_kwh": clearing.price,
        "cleared_wh": clearing.cleared_wh,
        "bid_wh": clearing.bid_wh,
        "offer_wh": clearing.offer_wh,
        "n_bids": clearing.n_bids,
        "n_offers": clearing.n_offers,
        "n_trades": clearing.n_trades,
        "gate_closed_at": gate_closed_at,
        **_network_fields(network),
    }


def _network_fields(network: NetworkClearing | None) -> dict[str, Any]:
    """The grid-aware fields; their Avro defaults without a network section."""
    if network is None:
        return {
            "network_status": None,
            "welfare_micro": None,
            "reference_welfare_micro": None,
            "reference_cleared_wh": None,
            "binding_limits": [],
            "zone_prices": {},
        }
    return {
        "network_status": network.status.value,
        "welfare_micro": network.welfare_micro,
        "reference_welfare_micro": network.reference_welfare_micro,
        "reference_cleared_wh": network.reference.cleared_wh,
        "binding_limits": [f"{u.point_id}:{u.binding}" for u in network.binding],
        "zone_prices": dict(network.zone_prices),
    }


def rejection_record(order: MarketOrder, verdict: Verdict, rejected_at: int) -> dict[str, Any]:
    """Rejection event for a refused order (``rejected_at``: the event time of the decision, UTC ms)."""
    assert verdict.code is not None
    return {
        "event_id": stable_id("rej", order.order_id, order.signature, verdict.code.value),
        "subject_kind": "MarketOrder",
        "subject_id": order.order_id,
        "party_id": order.participant_id,
        "code": verdict.code.value,
        "reason": verdict.reason,
        "rejected_at": rejected_at,
    }
