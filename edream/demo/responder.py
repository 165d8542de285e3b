"""Simulated home energy managers that follow flexibility orders (the devices side of LL-UC08).

The responder keeps the latest revision of every :class:`~streams.flex.orders.FlexOrder` seen on
``flex.orders.v1``. While a prosumer has an allocation, its meter reads ``baseline_kw -/+ flex`` where ``flex`` is
the catch-up set-point that makes the slot average hit the ordered kW (:func:`streams.flex.dispatch.catch_up_kw`),
measured as verification measures it (its own readings integrated by the platform's one rule,
:class:`streams.flex.delivery.DeliveryMeter`) against the baseline the order froze at acceptance.

One prosumer per order defects (the allocated prosumer with the smallest id stops delivering from the middle of
the order's second slot), so the demo also shows a SHORTFALL deviation, a re-dispatch (amended revision) and a
penalty. Set ``defect=False`` for fully compliant devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.flex.delivery import DeliveryMeter
from streams.flex.dispatch import catch_up_kw
from streams.flex.orders import FlexOrder, OrderAllocation


@dataclass
class FlexResponder:
    step_ms: int = 5_000
    defect: bool = True
    orders: dict[str, FlexOrder] = field(default_factory=dict)
    defectors: dict[str, tuple[str, int]] = field(default_factory=dict)  # order_id -> (prosumer, from ms)
    meter: DeliveryMeter = field(
        default_factory=DeliveryMeter
    )  # delivery per order/prosumer/slot as measured

    def on_order(self, order: FlexOrder) -> bool:
        """Apply an order revision (older or equal revisions are ignored). True if applied."""
        old = self.orders.get(order.order_id)
        if old is not None and old.revision >= order.revision:
            return False
        self.orders[order.order_id] = order
        if self.defect and order.order_id not in self.defectors and order.allocations:
            slots = order.slot_starts()
            pick = min(a.prosumer_id for a in order.allocations)
            second = slots[1] if len(slots) > 1 else slots[0]
            self.defectors[order.order_id] = (pick, second + order.slot_ms // 2)
        return True

    def _allocation(self, prosumer_id: str, ts_ms: int) -> tuple[FlexOrder, OrderAllocation] | None:
        for order in self.orders.values():
            if order.status == "CANCELLED":
                continue
            slot = ts_ms - ts_ms % order.slot_ms
            alloc = order.allocation(prosumer_id, slot)
            if alloc is not None:
                return order, alloc
        return None

    def metered_kw(self, prosumer_id: str, ts_ms: int, own_kw: float) -> float:
        """Net kW metered at ``ts_ms`` (the set-point decided at the start of the step ending there): ``own_kw``
        unless ordered."""
        kw = self._power_kw(prosumer_id, ts_ms - self.step_ms, own_kw)
        self.meter.on_reading(prosumer_id, ts_ms, kw)
        return kw

    def _power_kw(self, prosumer_id: str, t_prev: int, own_kw: float) -> float:
        hit = self._allocation(prosumer_id, t_prev)
        if hit is None:
            return own_kw
        order, alloc = hit
        defector, since = self.defectors.get(order.order_id, ("", 0))
        flex = 0.0
        if not (prosumer_id == defector and t_prev >= since):
            slot_end = alloc.slot_start + order.slot_ms
            so_far = self.meter.so_far_kwms(
                (order.order_id, prosumer_id, alloc.slot_start),
                prosumer_id,
                alloc.slot_start,
                slot_end,
                order.direction,
                alloc.baseline_kw,
                t_prev,
            )
            flex = max(0.0, catch_up_kw(alloc.kw, so_far, t_prev, alloc.slot_start, slot_end))
        return order.direction.actual_kw(alloc.baseline_kw, flex)
