"""The one Settlement record (avro/Settlement.avsc) that flexibility and market settlement both produce."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from streams.flex.ids import stable_id
from streams.settlement.canonical import canonical_bytes


@dataclass(frozen=True)
class SettlementRecord:
    """Money-relevant outcome for one party and window: ``quantity_wh`` (Wh), ``amount_micro`` (currency
    micro-units, positive = paid to the party), times in UTC epoch ms. Subclasses fix ``KIND``."""

    KIND: ClassVar[str]

    settlement_id: str
    window_id: str
    window_start: int
    window_end: int
    party_id: str
    reference_id: str
    quantity_wh: int
    amount_micro: int
    currency: str
    details: str
    computed_at: int
    version: int = 1

    @property
    def event_id(self) -> str:
        return stable_id("evt", "Settlement", self.settlement_id, self.version)

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "settlement_id": self.settlement_id,
            "kind": self.KIND,
            "window_id": self.window_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "party_id": self.party_id,
            "reference_id": self.reference_id,
            "quantity_wh": self.quantity_wh,
            "amount_micro": self.amount_micro,
            "currency": self.currency,
            "details": self.details,
            "version": self.version,
            "computed_at": self.computed_at,
        }

    def leaf_bytes(self) -> bytes:
        """Canonical bytes of the record (what a Merkle anchor commits to)."""
        return canonical_bytes(self.to_avro())
