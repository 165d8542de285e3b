"""Flexibility evaluation (LL-UC05): available up/down kW per prosumer and slot."""

from __future__ import annotations

from streams.flex.enrolment import ProsumerRecord
from streams.flex.model import ZERO, Capability, Direction, SlotOutlook


def evaluate(
    record: ProsumerRecord, slot_start_ms: int, slot_minutes: int, outlook: SlotOutlook
) -> Capability:
    """Sum of the assets' capabilities, clipped by the grid connection (kW).

    Up flex is capped at ``connection_kw - baseline_kw`` (import limit), down flex at
    ``baseline_kw + connection_kw`` (export limit). Availability windows are applied per direction. A prosumer
    whose baseline is unknown (``outlook.known`` false) offers nothing: its delivery could not be verified.
    """
    if not outlook.known:
        return ZERO
    total = ZERO
    for asset in record.assets:
        total = total + asset.capability(outlook, slot_minutes)
    down = min(total.down_kw, max(0.0, outlook.baseline_kw + record.connection_kw))
    up = min(total.up_kw, max(0.0, record.connection_kw - outlook.baseline_kw))
    if not record.is_available(slot_start_ms, slot_minutes, Direction.REDUCE):
        down = 0.0
    if not record.is_available(slot_start_ms, slot_minutes, Direction.INCREASE):
        up = 0.0
    return Capability(down_kw=down, up_kw=up)


def available_kw(
    record: ProsumerRecord, slot_start_ms: int, slot_minutes: int, outlook: SlotOutlook, direction: Direction
) -> float:
    """Available flexibility in ``direction``, kW."""
    return evaluate(record, slot_start_ms, slot_minutes, outlook).for_direction(direction)
