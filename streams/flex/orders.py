"""Accepted offers become per-prosumer, per-slot orders with the baseline frozen at acceptance (LL-UC07/08)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from streams.flex.ids import stable_id
from streams.flex.model import Direction
from streams.flex.offers import FlexOffer, OutlookFn
from streams.flex.requests import FlexRequest, to_ms

OrderStatus = Literal["ACTIVE", "AMENDED", "COMPLETED", "CANCELLED"]


@dataclass(frozen=True)
class OrderAllocation:
    """kw: flexibility to deliver (slot average), kW; baseline_kw: baseline net consumption frozen at
    acceptance, kW."""

    prosumer_id: str
    slot_start: int
    kw: float
    baseline_kw: float


@dataclass(frozen=True)
class FlexOrder:
    order_id: str
    offer_id: str
    request_id: str
    revision: int
    direction: Direction
    status: OrderStatus
    allocations: tuple[OrderAllocation, ...]
    slot_minutes: int
    created_at: int

    @property
    def event_id(self) -> str:
        return stable_id("evt", "FlexOrder", self.order_id, self.revision)

    @property
    def slot_ms(self) -> int:
        return self.slot_minutes * 60_000

    def allocation(self, prosumer_id: str, slot_start: int) -> OrderAllocation | None:
        for a in self.allocations:
            if a.prosumer_id == prosumer_id and a.slot_start == slot_start:
                return a
        return None

    def slot_total_kw(self, slot_start: int) -> float:
        return round(sum(a.kw for a in self.allocations if a.slot_start == slot_start), 3)

    def slot_starts(self) -> list[int]:
        return sorted({a.slot_start for a in self.allocations})

    def slot_spans(self) -> list[tuple[int, int]]:
        """(start, end) UTC epoch ms of each of its slots."""
        return [(t, t + self.slot_ms) for t in self.slot_starts()]

    def prosumer_spans(self) -> set[tuple[str, int, int]]:
        """(prosumer_id, slot start, slot end) UTC epoch ms of each allocation: what the prosumer owes, and when."""
        return {(a.prosumer_id, a.slot_start, a.slot_start + self.slot_ms) for a in self.allocations}

    def amended(self, allocations: tuple[OrderAllocation, ...], now: int) -> FlexOrder:
        """Next revision with ``allocations`` (status AMENDED)."""
        return replace(
            self, revision=self.revision + 1, status="AMENDED", allocations=allocations, created_at=now
        )

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "order_id": self.order_id,
            "offer_id": self.offer_id,
            "request_id": self.request_id,
            "revision": self.revision,
            "direction": str(self.direction),
            "status": self.status,
            "allocations": [vars(a) for a in self.allocations],
            "slot_minutes": self.slot_minutes,
            "created_at": self.created_at,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FlexOrder:
        return cls(
            order_id=r["order_id"],
            offer_id=r["offer_id"],
            request_id=r["request_id"],
            revision=int(r["revision"]),
            direction=Direction(r["direction"]),
            status=r["status"],
            allocations=tuple(
                OrderAllocation(
                    a["prosumer_id"], to_ms(a["slot_start"]), float(a["kw"]), float(a["baseline_kw"])
                )
                for a in r["allocations"]
            ),
            slot_minutes=int(r.get("slot_minutes", 15)),
            created_at=to_ms(r["created_at"]),
        )


def order_id_for(offer_id: str) -> str:
    return stable_id("ord", offer_id)


def create_order(offer: FlexOffer, request: FlexRequest, outlook: OutlookFn, now: int) -> FlexOrder:
    """Revision-1 order from an accepted offer; each allocation's baseline is frozen from ``outlook`` now."""
    allocs = tuple(
        OrderAllocation(a.prosumer_id, a.slot_start, a.kw, outlook(a.prosumer_id, a.slot_start).baseline_kw)
        for a in offer.allocations
    )
    return FlexOrder(
        order_id=order_id_for(offer.offer_id),
        offer_id=offer.offer_id,
        request_id=request.request_id,
        revision=1,
        direction=request.direction,
        status="ACTIVE",
        allocations=allocs,
        slot_minutes=request.slot_minutes,
        created_at=now,
    )
