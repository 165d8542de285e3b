"""Voltage-band violations as flexibility needs (pure): which congestion point answers for a violation, how the
voltage at its worst bus responds to each prosumer's consumption, and how much flexibility brings it back.

* **Worst bus**: in a slot where a point's zone (the buses supplied through it) leaves EN 50160's 0.9-1.1 pu band,
  the zone bus furthest outside the band (lowest under, highest over).
* **Which point asks**: nested zones see the same bus (a transformer's zone holds its feeders'), so a violation is
  the concern of the point with the *smallest* violating zone holding that bus; the others do not ask for it (one
  request per problem, for the area closest to it).
* **Sensitivity**: finite difference as for loading (:mod:`streams.grid.congestion`): ``delta_kw`` more consumption at
  each zone prosumer's bus, the worst bus's voltage change in pu per kW (negative: consumption lowers it), refined
  to the secant over the change a request would ask (voltage is not linear in load near the band's edge). Once per
  run of consecutive violating slots of a point, at its worst slot.
* **Need** (:func:`voltage_need`): under the band, REDUCE by ``(0.9 + margin - vm) / s``; over it (PV pushing the
  voltage up), INCREASE consumption by ``(vm - (1.1 - margin)) / s``, with ``s`` the *smallest* |sensitivity| of the
  prosumers whose consumption lowers the voltage (the desk may pick any of the area).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streams.flex.model import Direction
from streams.grid.injections import Injections
from streams.grid.model import GridModel
from streams.grid.perturb import per_prosumer
from streams.grid.powerflow import FlowResult, PowerFlowEngine

V_MIN_PU, V_MAX_PU = 0.9, 1.1
#: pu inside the band a voltage request aims at (covers forecast error, as the 5 %-points of loading do)
MARGIN_PU = 0.01
#: secant refinements of a voltage sensitivity (:func:`voltage_sensitivity`)
SECANT_STEPS = 3


def band_excess(vm: np.ndarray) -> np.ndarray:
    """pu outside the 0.9-1.1 band per bus (0 inside)."""
    return np.maximum(V_MIN_PU - vm, 0.0) + np.maximum(vm - V_MAX_PU, 0.0)


def worst_buses(base: FlowResult, masks: np.ndarray) -> np.ndarray:
    """(S, C) position (``net.bus`` order) of each point's worst zone bus per slot, -1 where the zone is within the
    band or the flow did not converge; ``masks``: (C, B) zone bus masks."""
    excess = band_excess(np.nan_to_num(base.vm_pu, nan=1.0))  # (S, B)
    out = np.full((excess.shape[0], masks.shape[0]), -1, dtype=np.int64)
    violating = (excess > 0) & base.converged[:, None]
    if not violating.any():  # the usual case: one pass over the buses, nothing per point
        return out
    for c in range(masks.shape[0]):  # per point over its own buses (an (S, C, B) array is GBs on large grids)
        cols = np.flatnonzero(masks[c])
        if not len(cols):
            continue
        zone = excess[:, cols]
        hit = violating[:, cols].any(axis=1)
        out[hit, c] = cols[zone[hit].argmax(axis=1)]
    return out


def owners(worst: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(S, C) bool: the point answers for its worst bus in that slot (the smallest violating zone holding it)."""
    sizes = masks.sum(axis=1)
    out = np.zeros(worst.shape, dtype=bool)
    for k in range(worst.shape[0]):
        for c in np.flatnonzero(worst[k] >= 0):
            bus = worst[k, c]
            holders = [d for d in np.flatnonzero(worst[k] >= 0) if masks[d, bus]]
            out[k, c] = sizes[c] == min(sizes[d] for d in holders)
    return out


def voltage_sensitivity(
    model: GridModel,
    engine: PowerFlowEngine,
    one: Injections,
    bus: int,
    prosumers: Sequence[int],
    delta_kw: float,
    iterations: int = SECANT_STEPS,
) -> dict[str, float]:
    """{prosumer id: pu per kW} of the voltage at bus position ``bus`` (``net.bus`` order) for the prosumers at
    positions ``prosumers``, around scenario ``one``: first the slope over ``delta_kw``, then, ``iterations`` times,
    the secant over the change that slope says is needed (the voltage is far from linear in the load near the band's
    edge: on a 1 km feeder at 0.80 pu the 1-kW slope asks 24 kW where 30 are needed). So each prosumer's value is the
    average slope over the flexibility a request would ask of it."""
    read = lambda res: res.vm_pu[:, bus]  # noqa: E731 - the one reading of the perturbed flows
    sens = per_prosumer(model, engine, one, prosumers, delta_kw, read)
    vm = float(engine.run(one).vm_pu[0, bus])
    for _ in range(iterations):
        need = voltage_need(VoltageIssue(vm, sens), MARGIN_PU)
        if need is None or need[1] <= 0:
            break
        step = -need[1] if need[0] is Direction.REDUCE else need[1]  # kW of consumption at each bus
        sens = per_prosumer(model, engine, one, prosumers, step, read)
    return sens


@dataclass(frozen=True)
class VoltageIssue:
    """A point's violation it answers for in one slot: the worst bus's voltage (pu) and its sensitivities."""

    vm_pu: float
    sensitivity: Mapping[str, float]


def voltage_need(issue: VoltageIssue | None, margin_pu: float = MARGIN_PU) -> tuple[Direction, float] | None:
    """Direction and kW that bring the worst bus back to ``margin_pu`` inside the band (None: nothing to ask, or no
    prosumer whose consumption moves it)."""
    if issue is None:
        return None
    lowering = [-v for v in issue.sensitivity.values() if v < 0]
    if not lowering:
        return None
    if issue.vm_pu < V_MIN_PU:
        return Direction.REDUCE, (V_MIN_PU + margin_pu - issue.vm_pu) / min(lowering)
    if issue.vm_pu > V_MAX_PU:
        return Direction.INCREASE, (issue.vm_pu - (V_MAX_PU - margin_pu)) / min(lowering)
    return None


def worst_vm(vm_min_pu: float | None, vm_max_pu: float | None) -> float | None:
    """The zone's worst voltage from its lowest and highest (pu): the one further outside the band (None: both
    unknown)."""
    known = [v for v in (vm_min_pu, vm_max_pu) if v is not None]
    return max(known, key=lambda v: float(band_excess(np.asarray(v)))) if known else None
