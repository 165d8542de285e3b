"""The ``MarketOrder`` event (avro/MarketOrder.avsc): signed terms plus the id and signature derived from them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from streams.market.orders import BookOrder, EnergyType, Side


@dataclass(frozen=True)
class OrderTerms:
    """What the participant signs (EIP-712). Quantity in Wh, limit price in micro-units per kWh, times UTC ms.

    ``quantity_wh`` and the price are plain signed ints here so that a signed but invalid order can still be
    verified and then rejected with a precise reason.
    """

    participant_id: str
    address: str
    session_id: str
    side: Side
    slot_start: int
    slot_minutes: int
    quantity_wh: int
    limit_price_micro_per_kwh: int
    energy_type: EnergyType
    client_ts: int
    nonce: int


@dataclass(frozen=True)
class MarketOrder(OrderTerms):
    """A signed order. ``order_id`` is the 0x-hex EIP-712 digest of the terms, so ids are deterministic and
    tamper-evident; ``event_id`` equals it (a redelivered order is the same event)."""

    order_id: str = ""
    signature: str = ""

    @property
    def terms(self) -> OrderTerms:
        return OrderTerms(**{f.name: getattr(self, f.name) for f in fields(OrderTerms)})

    def to_avro(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["side"] = self.side.value
        rec["energy_type"] = self.energy_type.value
        rec["event_id"] = self.order_id
        return rec

    @classmethod
    def from_avro(cls, rec: dict[str, Any]) -> MarketOrder:
        kw = {f.name: rec[f.name] for f in fields(cls)}
        kw["side"] = Side(rec["side"])
        kw["energy_type"] = EnergyType(rec["energy_type"])
        return cls(**kw)

    def to_book(self) -> BookOrder:
        return BookOrder(
            self.order_id,
            self.participant_id,
            self.side,
            self.quantity_wh,
            self.limit_price_micro_per_kwh,
            self.client_ts,
        )
