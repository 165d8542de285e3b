"""Delivered flexibility as the platform measures it: actual energy by the one integration rule
(:mod:`streams.energy_integration`) against the order's frozen baseline.

:func:`delivered_kwms` is the formula verification settles with; :class:`DeliveryMeter` applies it on the device
side (simulated devices and home energy managers), so a device that catches up with its slot-average order
(:func:`streams.flex.dispatch.catch_up_kw`) aims at the delivery the platform will measure from its readings.
Units: kW, UTC epoch ms, energy in kW*ms.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from streams.energy_integration import DEFAULT_MAX_GAP_MS, WindowIntegrator
from streams.flex.model import Direction


def delivered_kwms(direction: Direction, baseline_kw: float, energy: WindowIntegrator) -> float:
    """Flexibility delivered over the measured time of ``energy``, kW*ms: ``baseline x measured time - actual``
    (REDUCE) or the reverse (INCREASE). Unmeasured time (gaps, before the first or after the last reading)
    delivers nothing."""
    return direction.delivered_kw(baseline_kw * energy.covered_ms, energy.net_kwms)


@dataclass
class DeliveryMeter:
    """Per prosumer and slot, the delivery its own readings show so far (device side of verification).

    ``so_far_kwms(key, ...)`` opens the slot's window on first use at ``now`` (from the slot start, or from ``now``
    for an allocation learnt mid-slot: verification counts the time before it was added as nothing delivered),
    seeded with the prosumer's latest reading (the left neighbour); ``on_reading`` feeds the prosumer's open
    windows and closes those the reading passes.
    """

    max_gap_ms: int = DEFAULT_MAX_GAP_MS
    open: dict[str, dict[Hashable, WindowIntegrator]] = field(
        default_factory=dict
    )  # prosumer -> key -> window
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # prosumer -> latest (ts, kW)

    def so_far_kwms(
        self,
        key: Hashable,
        prosumer_id: str,
        slot_start: int,
        slot_end: int,
        direction: Direction,
        baseline_kw: float,
        now: int,
    ) -> float:
        """Delivery so far in the slot ``key`` (e.g. order, prosumer, slot start), kW*ms, at ``now``."""
        windows = self.open.setdefault(prosumer_id, {})
        energy = windows.get(key)
        if energy is None:
            since = min(max(slot_start, now), slot_end)
            energy = windows[key] = WindowIntegrator(since, slot_end, self.max_gap_ms)
            if prosumer_id in self.last:
                energy.add(*self.last[prosumer_id])
        return delivered_kwms(direction, baseline_kw, energy)

    def on_reading(self, prosumer_id: str, ts: int, kw: float) -> None:
        """The prosumer's meter read ``kw`` (net kW) at ``ts`` (UTC epoch ms)."""
        self.last[prosumer_id] = (ts, kw)
        windows = self.open.get(prosumer_id)
        if windows:
            for key, energy in list(windows.items()):
                energy.add(ts, kw)
                if ts >= energy.end:
                    del windows[key]
