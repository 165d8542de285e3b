"""Flex orders -> OpenADR 2.0b DR events, one per ordered prosumer (pure).

An order's allocations for one prosumer become one event with one ``LOAD_DISPATCH`` signal of type ``delta``: the
change of the site's net consumption asked for, in kW, per slot (negative = consume less, for a REDUCE order;
positive for INCREASE). The intervals run contiguously from the first to the last ordered slot, each
``slot_minutes`` long; a slot of that span without allocation is a 0 kW interval (OpenADR intervals have no gaps).

Event ids are deterministic, ``<order_id>~r<revision>~<prosumer_id>``: the same order read twice (at least once,
or a restart re-reading the topic) gives the same event, and a later revision is a new event that replaces the
earlier one (the VTN cancels it). A CANCELLED order cancels its prosumers' events; a COMPLETED one changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from streams.flex.requests import to_ms

SIGNAL_NAME = "LOAD_DISPATCH"
SIGNAL_TYPE = "delta"


@dataclass(frozen=True)
class DispatchInterval:
    """``start_ms``: UTC epoch ms; ``minutes``: duration; ``kw``: change of net consumption, kW (negative = less)."""

    start_ms: int
    minutes: int
    kw: float


@dataclass(frozen=True)
class DispatchEvent:
    """The DR event of one order revision for one prosumer."""

    event_id: str
    order_id: str
    revision: int
    prosumer_id: str
    intervals: tuple[DispatchInterval, ...]
    signal_type: str = SIGNAL_TYPE  # LOAD_DISPATCH delta (flex orders) or setpoint (VPP dispatch)

    @property
    def key(self) -> tuple[str, str]:
        """What a later revision replaces: (order_id, prosumer_id)."""
        return self.order_id, self.prosumer_id


@dataclass(frozen=True)
class OrderPlan:
    """What one FlexOrder record asks of the VTN: events to add (they replace earlier revisions of the same
    key) and keys whose events to cancel."""

    add: tuple[DispatchEvent, ...] = ()
    cancel: tuple[tuple[str, str], ...] = ()


def event_id(order_id: str, revision: int, prosumer_id: str) -> str:
    return f"{order_id}~r{revision}~{prosumer_id}"


def intervals_of(slots: Mapping[int, float], slot_minutes: int) -> tuple[DispatchInterval, ...]:
    step = slot_minutes * 60_000
    first, last = min(slots), max(slots)
    return tuple(
        DispatchInterval(start, slot_minutes, slots.get(start, 0.0))
        for start in range(first, last + step, step)
    )


def plan_order(order: Mapping[str, Any], prosumers: Iterable[str], now_ms: int) -> OrderPlan:
    """The events of a decoded (and validated) FlexOrder for the prosumers we have a VEN for. Allocations whose
    slot has ended by ``now_ms`` (UTC epoch ms) are left out; an order with nothing left adds nothing."""
    wanted = set(prosumers)
    status, order_id, revision = order["status"], order["order_id"], int(order.get("revision") or 1)
    mine = [a for a in order["allocations"] if a["prosumer_id"] in wanted]
    if status == "CANCELLED":
        return OrderPlan(cancel=tuple(sorted({(order_id, a["prosumer_id"]) for a in mine})))
    if status == "COMPLETED":
        return OrderPlan()
    slot_minutes = int(order.get("slot_minutes") or 15)
    sign = -1.0 if order["direction"] == "REDUCE" else 1.0
    per_prosumer: dict[str, dict[int, float]] = defaultdict(dict)
    for a in mine:
        start = to_ms(a["slot_start"])
        if start + slot_minutes * 60_000 > now_ms:
            slots = per_prosumer[a["prosumer_id"]]
            slots[start] = slots.get(start, 0.0) + sign * float(a["kw"])
    return OrderPlan(
        add=tuple(
            DispatchEvent(
                event_id(order_id, revision, p), order_id, revision, p, intervals_of(slots, slot_minutes)
            )
            for p, slots in sorted(per_prosumer.items())
        )
    )
