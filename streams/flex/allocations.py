"""An order revision cut into per-prosumer FlexAllocation records (``flex.allocations.v1``, key prosumer_id): how
the area desk hands an order to the per-prosumer stage that verifies, settles and dispatches it.

Every prosumer of the new revision gets its slots; a prosumer that was in the previous revision and is in no slot
of the new one gets an empty list (released: its tracks without readings are dropped, as
:meth:`~streams.flex.verification.VerificationEngine.apply_order` does for a full order). Ids are deterministic
(order, revision, prosumer), so a replayed revision is recognised and ignored by its revision number.
"""

from __future__ import annotations

from streams.flex.ids import stable_id
from streams.flex.orders import FlexOrder
from streams.outputs import Out

TOPIC_ALLOCATIONS = "flex.allocations.v1"


def allocation_outs(order: FlexOrder, previous: FlexOrder | None = None) -> list[Out]:
    """FlexAllocation events of ``order`` (one per prosumer of it or of ``previous``), sorted by prosumer."""
    slots: dict[str, list[dict]] = {}
    if previous is not None:
        for a in previous.allocations:
            slots.setdefault(a.prosumer_id, [])
    for a in order.allocations:
        slots.setdefault(a.prosumer_id, []).append(
            {"slot_start": a.slot_start, "kw": a.kw, "baseline_kw": a.baseline_kw}
        )
    return [
        Out(
            TOPIC_ALLOCATIONS,
            "FlexAllocation",
            pid,
            {
                "event_id": stable_id("evt", "FlexAllocation", order.order_id, order.revision, pid),
                "order_id": order.order_id,
                "revision": order.revision,
                "prosumer_id": pid,
                "direction": str(order.direction),
                "status": order.status,
                "slot_minutes": order.slot_minutes,
                "created_at": order.created_at,
                "slots": sorted(s, key=lambda x: x["slot_start"]),
            },
        )
        for pid, s in sorted(slots.items())
    ]
