"""A DSO's UFTP FlexSettlement checked against the platform's own settlement records (pure functions).

In UFTP 3.x the DSO settles: it sends a FlexSettlement listing, per FlexOrder it placed (``OrderReference`` = the
FlexOrder's MessageID = our ``acceptance_id``), the flexibility it ordered and the flexibility it holds delivered
per ISP. The aggregator answers a FlexSettlementResponse with one status per order: Accepted, or Disputed with the
reason. Here an order is accepted when, for every ISP the DSO lists, its ordered and delivered flex power agree
with the platform's records of that order: ordered = the kW we accepted for the slot (our ``FlexAcceptance`` of the
FlexOrder); delivered = the sum over the order's prosumers of ``delivered_wh`` of the settlement records (the ones
anchored on chain), as average W over the slot. The records' ``target_wh`` sum is the ordered figure only without
an acceptance: where a slot was re-dispatched it exceeds the order (the defector keeps its target, the prosumers
taking over get theirs).

Decisions: power magnitudes are compared (the DSO states them with the USEF sign, negative for a reduction); the
tolerance per ISP is the larger of :data:`REL_TOLERANCE` of the ordered power and :data:`ROUNDING_WH` per
prosumer as average power over the slot (each record's energy is rounded to whole Wh: 4 W over 15 minutes, 60 W
over one); an ISP the DSO lists without a figure is not compared; an
ISP the platform has no record of, an order reference it does not know, or a delivery it has not settled yet
(no records) is disputed. ContractSettlements (bilateral capacity contracts) are not checked: the platform holds
no such contracts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shapeshifter_uftp import FlexSettlement as UftpSettlement
from shapeshifter_uftp.uftp import AcceptedDisputed, FlexOrderSettlement, FlexOrderSettlementStatus

from connectors.uftp.isp import IspFrame

#: relative tolerance on the ordered power of an ISP
REL_TOLERANCE = 0.01
#: absolute tolerance per settled prosumer (Wh over the slot): its target and delivered energy are whole Wh
ROUNDING_WH = 1.0


@dataclass(frozen=True)
class SettledSlot:
    """The platform's settlement of one slot of an order, summed over its prosumers (Wh over ``minutes``)."""

    slot_start: int  # UTC epoch ms
    minutes: int
    ordered_wh: int  # the prosumers' targets
    delivered_wh: int
    prosumers: int
    accepted_kw: float | None = None  # what we accepted from the DSO for the slot

    def ordered_watts(self) -> float:
        """The slot's ordered flex power (W): the accepted kW, else the prosumers' targets as average power."""
        return self.accepted_kw * 1000 if self.accepted_kw is not None else self.watts(self.ordered_wh)

    def watts(self, wh: float) -> float:
        """Average power (W) of ``wh`` over the slot."""
        return wh * 60 / self.minutes


def settled_slots(
    records: Iterable[Mapping[str, Any]], accepted_kw: Mapping[int, float] | None = None
) -> dict[int, SettledSlot]:
    """Flex ``Settlement`` records of one order (as the REST API lists them) -> slot start -> :class:`SettledSlot`;
    ``accepted_kw``: slot start (UTC epoch ms) -> the kW we accepted from the DSO for it."""
    slots: dict[int, SettledSlot] = {}
    for rec in records:
        details = rec["details"] if isinstance(rec["details"], dict) else json.loads(rec["details"] or "{}")
        start, minutes = (
            int(rec["window_start"]),
            (int(rec["window_end"]) - int(rec["window_start"])) // 60_000,
        )
        prev = slots.get(start, SettledSlot(start, minutes, 0, 0, 0))
        slots[start] = SettledSlot(
            start,
            minutes,
            prev.ordered_wh + int(details.get("target_wh", 0)),
            prev.delivered_wh + int(details.get("delivered_wh", 0)),
            prev.prosumers + 1,
            (accepted_kw or {}).get(start),
        )
    return slots


def _differs(claimed: int | None, ours: float, tolerance: float) -> bool:
    return claimed is not None and abs(abs(claimed) - abs(ours)) > tolerance


def dispute_of(order: FlexOrderSettlement, time_zone: str, ours: dict[int, SettledSlot] | None) -> str | None:
    """Why ``order`` is disputed, or None when it agrees with ``ours`` (None: the order is unknown to us)."""
    if ours is None:
        return f"unknown FlexOrder {order.order_reference}"
    if not ours:
        return f"FlexOrder {order.order_reference}: no settlement on record yet"
    minutes = next(iter(ours.values())).minutes
    frame = IspFrame(order.period.to_date(), time_zone, minutes)
    problems = []
    for isp in order.isps:
        for k in range(isp.duration):
            number = isp.start + k
            slot = ours.get(frame.start_ms(number))
            if slot is None:
                problems.append(f"ISP {number}: no delivery on record")
                continue
            ordered, delivered = slot.ordered_watts(), slot.watts(slot.delivered_wh)
            tolerance = max(REL_TOLERANCE * abs(ordered), slot.watts(ROUNDING_WH) * slot.prosumers)
            if _differs(isp.ordered_flex_power, ordered, tolerance):
                problems.append(
                    f"ISP {number}: ordered {abs(isp.ordered_flex_power)} W, ours {ordered:.0f} W"
                )
            if _differs(isp.delivered_flex_power, delivered, tolerance):
                problems.append(
                    f"ISP {number}: delivered {abs(isp.delivered_flex_power)} W, measured {delivered:.0f} W"
                )
    return "; ".join(problems)[:1000] or None


def settlement_statuses(
    message: UftpSettlement,
    time_zone: str,
    ours_of: Callable[[str], dict[int, SettledSlot] | None],
) -> list[FlexOrderSettlementStatus]:
    """One status per order of ``message``; ``ours_of(order_reference)``: our settled slots of that FlexOrder
    (empty: nothing settled yet; None: unknown order)."""
    statuses = []
    for order in message.flex_order_settlements:
        reason = dispute_of(order, time_zone, ours_of(order.order_reference))
        statuses.append(
            FlexOrderSettlementStatus(
                order_reference=order.order_reference,
                disposition=AcceptedDisputed.DISPUTED if reason else AcceptedDisputed.ACCEPTED,
                dispute_reason=reason,
            )
        )
    return statuses
