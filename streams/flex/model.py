"""Shared value types of the flexibility lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Requested change of *net consumption* (import positive): REDUCE (down) or INCREASE (up)."""

    REDUCE = "REDUCE"
    INCREASE = "INCREASE"

    def delivered_kw(self, baseline_kw: float, actual_kw: float) -> float:
        """Delivered flexibility, kW: ``baseline - actual`` for REDUCE, ``actual - baseline`` for INCREASE."""
        return baseline_kw - actual_kw if self is Direction.REDUCE else actual_kw - baseline_kw

    def actual_kw(self, baseline_kw: float, delivered_kw: float) -> float:
        """Net consumption, kW, that delivers ``delivered_kw`` against ``baseline_kw`` (inverse of the above)."""
        return baseline_kw - delivered_kw if self is Direction.REDUCE else baseline_kw + delivered_kw


@dataclass(frozen=True)
class SlotOutlook:
    """What the forecasting/baseline areas expect for one prosumer and slot.

    baseline_kw: baseline net consumption, kW (import positive; PV included, may be negative).
    sigma_kw: forecast uncertainty (one standard deviation), kW, >= 0.
    pv_kw_per_kwp: expected PV output per installed kWp in the slot, kW/kWp (0 at night).
    ev_connected: an EV is plugged in during the slot.
    battery_soc: battery state of charge at slot start, fraction 0..1.
    source: where ``baseline_kw`` came from (``BASELINE``, ``FORECAST``, ``METERED``, ``ASSUMED`` for simulated or
    hand-made outlooks); ``NONE`` means nothing is known, and such a prosumer offers no flexibility.
    """

    baseline_kw: float
    sigma_kw: float = 0.0
    pv_kw_per_kwp: float = 0.0
    ev_connected: bool = True
    battery_soc: float = 0.5
    source: str = "ASSUMED"

    @property
    def known(self) -> bool:
        return self.source != "NONE"


@dataclass(frozen=True)
class Capability:
    """Available flexibility for one prosumer and slot, kW (both >= 0)."""

    down_kw: float
    up_kw: float

    def for_direction(self, direction: Direction) -> float:
        return self.down_kw if direction is Direction.REDUCE else self.up_kw

    def __add__(self, other: Capability) -> Capability:
        return Capability(self.down_kw + other.down_kw, self.up_kw + other.up_kw)


ZERO = Capability(0.0, 0.0)
