"""Dispatch helpers: device set-points that make a prosumer hit its slot-average order (LL-UC08)."""

from __future__ import annotations

from streams.flex.enrolment import EvCharger
from streams.flex.model import Direction


def catch_up_kw(target_kw: float, delivered_kwms: float, now: int, slot_start: int, slot_end: int) -> float:
    """Flexibility (kW) to deliver from ``now`` to slot end so the slot average reaches ``target_kw``.

    delivered_kwms: flexibility already delivered since slot start, kW*ms. Before the slot: ``target_kw``.
    """
    if now <= slot_start:
        return target_kw
    remaining = slot_end - now
    if remaining <= 0:
        return 0.0
    return (target_kw * (slot_end - slot_start) - delivered_kwms) / remaining


def ev_setpoint_a(charger: EvCharger, direction: Direction, flex_kw: float) -> int:
    """EV charger current set-point (A; 0 = stop) that delivers ``flex_kw`` relative to nominal charging."""
    nominal = charger.power_kw(charger.nominal_current_a)
    power = nominal - flex_kw if direction is Direction.REDUCE else nominal + flex_kw
    return charger.current_for_kw(power)
