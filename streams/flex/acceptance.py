"""The DSO's answer to an offer (``FlexAcceptance.avsc``, topic ``flex.acceptances.v1``) as a typed value.

ACCEPTED: the DSO orders all or part of the offer (``slots``: accepted kW per slot), at ``price_micro``, and the
acceptance counts only if it reaches the desk by ``valid_until``. REJECTED: the DSO declines the offer (no slots).
Like a request it is signed by the DSO's registered key (:mod:`streams.flex.signing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from streams.flex.ids import stable_id
from streams.flex.requests import to_ms

Decision = Literal["ACCEPTED", "REJECTED"]


@dataclass(frozen=True)
class AcceptedSlot:
    """slot_start: UTC epoch ms; kw: accepted flexibility, kW."""

    slot_start: int
    kw: float


@dataclass(frozen=True)
class FlexAcceptance:
    """price_micro: currency micro-units for the accepted flexibility; valid_until/created_at: UTC epoch ms.
    ``acceptance_id``: the DSO's message id (a UFTP FlexOrder's MessageID), processed once."""

    acceptance_id: str
    offer_id: str
    dso_id: str
    area_id: str
    decision: Decision
    slots: tuple[AcceptedSlot, ...]
    valid_until: int
    created_at: int
    price_micro: int = 0
    currency: str = "EUR"
    signature: str | None = None

    @property
    def event_id(self) -> str:
        return stable_id("evt", "FlexAcceptance", self.acceptance_id)

    def accepted_kw(self) -> dict[int, float]:
        """slot_start -> accepted kW."""
        return {s.slot_start: s.kw for s in self.slots}

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "acceptance_id": self.acceptance_id,
            "offer_id": self.offer_id,
            "dso_id": self.dso_id,
            "area_id": self.area_id,
            "decision": self.decision,
            "slots": [{"slot_start": s.slot_start, "kw": s.kw} for s in self.slots],
            "price_micro": self.price_micro,
            "currency": self.currency,
            "valid_until": self.valid_until,
            "created_at": self.created_at,
            "signature": self.signature,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FlexAcceptance:
        """Timestamps as epoch ms ints or datetimes (fastavro decodes timestamp-millis to datetime)."""
        return cls(
            acceptance_id=r["acceptance_id"],
            offer_id=r["offer_id"],
            dso_id=r["dso_id"],
            area_id=r["area_id"],
            decision=r["decision"],
            slots=tuple(AcceptedSlot(to_ms(s["slot_start"]), float(s["kw"])) for s in r["slots"]),
            valid_until=to_ms(r["valid_until"]),
            created_at=to_ms(r["created_at"]),
            price_micro=int(r.get("price_micro", 0)),
            currency=r.get("currency", "EUR"),
            signature=r.get("signature"),
        )
