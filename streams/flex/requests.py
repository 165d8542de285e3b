"""The DSO's flexibility request (LL-UC05) as a typed value, with Avro (``FlexRequest.avsc``) conversion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.flex.ids import MS_PER_MINUTE, stable_id
from streams.flex.model import Direction


@dataclass(frozen=True)
class RequestSlot:
    """slot_start: UTC epoch ms; kw: requested flexibility, kW (> 0 when valid)."""

    slot_start: int
    kw: float


@dataclass(frozen=True)
class FlexRequest:
    """A DSO request. reward_micro_per_kwh: currency micro-units per kWh; deadline/created_at: UTC epoch ms.
    ``signature``: the DSO's EIP-712 signature over every other field (:mod:`streams.flex.signing`), 0x-hex."""

    request_id: str
    dso_id: str
    area_id: str
    direction: Direction
    slots: tuple[RequestSlot, ...]
    reward_micro_per_kwh: int
    deadline: int
    created_at: int
    slot_minutes: int = 15
    currency: str = "EUR"
    signature: str | None = None

    @property
    def slot_ms(self) -> int:
        return self.slot_minutes * MS_PER_MINUTE

    @property
    def event_id(self) -> str:
        return stable_id("evt", "FlexRequest", self.request_id)

    def slot_starts(self) -> list[int]:
        return [s.slot_start for s in self.slots]

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "request_id": self.request_id,
            "dso_id": self.dso_id,
            "area_id": self.area_id,
            "direction": str(self.direction),
            "slot_minutes": self.slot_minutes,
            "slots": [{"slot_start": s.slot_start, "kw": s.kw} for s in self.slots],
            "reward_micro_per_kwh": self.reward_micro_per_kwh,
            "currency": self.currency,
            "deadline": self.deadline,
            "created_at": self.created_at,
            "signature": self.signature,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FlexRequest:
        """Accepts timestamps as epoch ms ints or datetimes (fastavro decodes timestamp-millis to datetime)."""
        return cls(
            request_id=r["request_id"],
            dso_id=r["dso_id"],
            area_id=r["area_id"],
            direction=Direction(r["direction"]),
            slots=tuple(RequestSlot(to_ms(s["slot_start"]), float(s["kw"])) for s in r["slots"]),
            reward_micro_per_kwh=int(r["reward_micro_per_kwh"]),
            deadline=to_ms(r["deadline"]),
            created_at=to_ms(r["created_at"]),
            slot_minutes=int(r.get("slot_minutes", 15)),
            currency=r.get("currency", "EUR"),
            signature=r.get("signature"),
        )


def to_ms(value: Any) -> int:
    """UTC epoch ms from an int or an aware datetime."""
    if isinstance(value, int):
        return value
    return int(round(value.timestamp() * 1000))
