"""Congestion forecast (pure): per congestion point and slot, the loading, voltage band violations, overload and
the loading's sensitivity to each prosumer's bus, from the prosumers' forecast power over the horizon.

Sensitivity is a finite difference at the peak slot of every overload episode (consecutive overloaded slots of one
asset: within one it varies by about 2 % on the demo grid, and the flow direction that sets its sign does not turn
from above 100 % one way to above 100 % the other in a quarter hour): for every bus with a mapped prosumer in the
asset's zone (the buses supplied through it), one more power flow with ``delta_kw`` more consumption at that bus.
Those flows run on the whole network ("grid", exact) or on the zone cut out with a stiff slack at its supplying bus
("zone", :mod:`streams.grid.zone`: a few hundred buses instead of ten thousand; it misses the supplying bus's own
voltage change: on a weak 0.5 km test feeder at 0.85 pu a line's sensitivity comes out 10 % low, and a request
sized on it 10 % high).
Unit: %-points of loading per kW of added consumption (positive: consuming more loads the asset more, so REDUCE
relieves it; negative, as under reverse PV flow: INCREASE relieves it).
Voltage band: EN 50160, 0.9-1.1 pu of nominal, counted over the buses supplied through the asset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from streams.grid.injections import Injections
from streams.grid.model import CongestionPoint, GridModel
from streams.grid.perturb import per_prosumer
from streams.grid.powerflow import FlowResult, PowerFlowEngine
from streams.grid.voltage import (
    V_MAX_PU,
    V_MIN_PU,
    VoltageIssue,
    band_excess,
    owners,
    voltage_sensitivity,
    worst_buses,
)
from streams.grid.zone import supplying_bus, zone_injections, zone_model, zone_net

SensitivityMethod = Literal["grid", "zone"]


@dataclass(frozen=True)
class SlotCongestion:
    """One congestion point in one slot (``slot_start``: UTC epoch ms). ``converged`` False: the power flow failed,
    every figure is None/0 and the slot must not be trusted (flagged, not an error). ``loading_percent``: % of the
    asset's rating; ``overload_kw``: apparent power above ``max_loading_percent`` (kVA, reported as kW at cos phi 1);
    ``undervoltage_buses``/``overvoltage_buses``: zone buses outside 0.9/1.1 pu; ``sensitivity``: prosumer id ->
    %-points per kW of added consumption at its bus, for the prosumers of the zone (overloaded slots only; prosumers
    outside the zone are not supplied through the asset and are not asked)."""

    congestion_point_id: str
    area_id: str
    slot_start: int
    converged: bool
    loading_percent: float | None
    max_loading_percent: float
    overload_kw: float
    vm_min_pu: float | None
    vm_max_pu: float | None
    undervoltage_buses: int
    overvoltage_buses: int
    sensitivity: Mapping[str, float] = field(default_factory=dict)
    #: the zone's voltage-band violation this point answers for (:mod:`streams.grid.voltage`), None if none
    voltage: VoltageIssue | None = None

    @property
    def overloaded(self) -> bool:
        return (
            self.converged
            and self.loading_percent is not None
            and self.loading_percent > self.max_loading_percent
        )

    @property
    def voltage_violation(self) -> bool:
        return self.undervoltage_buses > 0 or self.overvoltage_buses > 0


def forecast_matrix(model: GridModel, forecasts_kw: Mapping[str, Sequence[float]], slots: int) -> np.ndarray:
    """(slots, prosumers) kW from per-prosumer forecasts (net consumption, kW, import positive). A mapped prosumer
    without a forecast of ``slots`` finite values is a ValueError naming it: a silent zero would size a wrong request.
    Forecasts of prosumers not on the grid are ignored."""
    out = np.empty((slots, len(model.prosumer_ids)))
    for j, pid in enumerate(model.prosumer_ids):
        values = forecasts_kw.get(pid)
        if values is None:
            raise ValueError(f"no forecast for prosumer {pid!r} (mapped to the grid)")
        arr = np.asarray(values, dtype=float)
        if arr.shape != (slots,) or not np.isfinite(arr).all():
            raise ValueError(
                f"forecast of prosumer {pid!r}: need {slots} finite kW values, got {arr.shape} / non-finite"
            )
        out[:, j] = arr
    return out


def _episodes(slots: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive slot indices."""
    return np.split(slots, np.flatnonzero(np.diff(slots) != 1) + 1) if len(slots) else []


def _bus_sensitivities(
    model: GridModel,
    engine: PowerFlowEngine,
    one: Injections,
    column: int,
    prosumers: Sequence[int],
    delta_kw: float,
) -> dict[str, float]:
    """{prosumer id: %-points per kW} of congestion point ``column`` for the prosumers at positions ``prosumers``,
    around scenario ``one``."""
    return per_prosumer(model, engine, one, prosumers, delta_kw, lambda res: res.loading_percent[:, column])


def _cut_out(
    model: GridModel, engine: PowerFlowEngine, cp: CongestionPoint, inj: Injections, base: FlowResult, k: int
) -> tuple[GridModel, PowerFlowEngine, Injections]:
    """Slot ``k`` on the point's zone alone, its slack at the supplying bus's voltage of the base flow: (zone model,
    its engine, its injections); the zone's prosumers are all of its prosumers."""
    sub = model.cached(("zone_net", cp.id), lambda: zone_net(model, cp))
    up = model.net.bus.index.get_loc(supplying_bus(model, cp))
    zone, kp, kl, kg = zone_model(model, cp, sub, float(base.vm_pu[k, up]))
    return zone, engine.for_model(zone), zone_injections(inj, np.array([k]), kp, kl, kg)


def _sensitivities(
    model: GridModel,
    engine: PowerFlowEngine,
    inj: Injections,
    base: FlowResult,
    overloaded: np.ndarray,
    delta_kw: float,
    method: SensitivityMethod,
) -> dict[tuple[int, int], dict[str, float]]:
    """(slot, congestion point) -> {prosumer id: %-points per kW} for every overloaded pair (``overloaded``: (S, C)
    bool), over the prosumers of the point's zone, computed once per overload episode at its peak slot."""
    out: dict[tuple[int, int], dict[str, float]] = {}
    for c, cp in enumerate(model.congestion_points):
        for run in _episodes(np.flatnonzero(overloaded[:, c])):
            k = int(run[np.argmax(base.loading_percent[run, c])])
            if method == "zone":
                zone, zone_engine, one = _cut_out(model, engine, cp, inj, base, k)
                args = (zone, zone_engine, one, 0, range(len(zone.prosumer_ids)))
            else:
                args = (model, engine, inj.take(np.array([k])), c, model.zone_prosumers(cp))
            values = _bus_sensitivities(*args, delta_kw)
            out.update({(int(j), c): values for j in run})
    return out


def _slot(
    cp: CongestionPoint, c: int, zone: np.ndarray, res: FlowResult, k: int, start: int
) -> SlotCongestion:
    """``zone``: boolean mask over the network's buses (``net.bus`` order) supplied through ``cp``."""
    if not res.converged[k]:
        return SlotCongestion(
            cp.id, cp.area_id, start, False, None, cp.max_loading_percent, 0.0, None, None, 0, 0
        )
    vm = res.vm_pu[k][zone]
    loading = float(res.loading_percent[k, c])
    return SlotCongestion(
        congestion_point_id=cp.id,
        area_id=cp.area_id,
        slot_start=start,
        converged=True,
        loading_percent=loading,
        max_loading_percent=cp.max_loading_percent,
        overload_kw=max(0.0, loading - cp.max_loading_percent) / 100.0 * cp.rated_kva,
        vm_min_pu=float(vm.min()) if len(vm) else None,
        vm_max_pu=float(vm.max()) if len(vm) else None,
        undervoltage_buses=int((vm < V_MIN_PU).sum()),
        overvoltage_buses=int((vm > V_MAX_PU).sum()),
    )


def forecast_congestion(
    model: GridModel,
    engine: PowerFlowEngine,
    injections: Injections,
    slot_starts_ms: Sequence[int],
    delta_kw: float = 1.0,
    sensitivity: SensitivityMethod = "grid",
) -> list[SlotCongestion]:
    """Every congestion point x slot (point-major, slots in order), with sensitivities for overloaded slots
    (``sensitivity``: "grid" solves the perturbed flows on the whole network, exact; "zone" on the asset's zone
    alone, see :mod:`streams.grid.zone`, for large networks)."""
    if len(slot_starts_ms) != injections.scenarios:
        raise ValueError(f"{len(slot_starts_ms)} slot starts for {injections.scenarios} scenarios")
    res = engine.run(injections)
    cps = model.congestion_points
    limits = np.array([cp.max_loading_percent for cp in cps])
    with np.errstate(invalid="ignore"):
        overloaded = res.converged[:, None] & (res.loading_percent > limits)
    sens = _sensitivities(model, engine, injections, res, overloaded, delta_kw, sensitivity)
    masks = np.array([np.isin(model.net.bus.index, list(cp.zone_buses)) for cp in cps]).reshape(len(cps), -1)
    issues = _voltage_issues(model, engine, injections, res, masks, delta_kw, sensitivity)
    out = []
    for c, cp in enumerate(cps):
        for k, start in enumerate(slot_starts_ms):
            s = _slot(cp, c, masks[c], res, k, int(start))
            if (k, c) in sens:
                s = replace(s, sensitivity=sens[(k, c)])
            if (k, c) in issues:
                s = replace(s, voltage=issues[(k, c)])
            out.append(s)
    return out


def _voltage_issues(
    model: GridModel,
    engine: PowerFlowEngine,
    inj: Injections,
    base: FlowResult,
    masks: np.ndarray,
    delta_kw: float,
    method: SensitivityMethod,
) -> dict[tuple[int, int], VoltageIssue]:
    """(slot, point) -> the violation the point answers for; the worst bus's sensitivities once per run of
    consecutive such slots on one side of the band, at its worst slot, on the whole grid or the zone cut out
    (``method``, as for loading)."""
    worst = worst_buses(base, masks)
    own = owners(worst, masks)
    out: dict[tuple[int, int], VoltageIssue] = {}
    under = np.take_along_axis(base.vm_pu, np.maximum(worst, 0), axis=1) < V_MIN_PU  # (S, C)
    for c, cp in enumerate(model.congestion_points):
        slots = np.flatnonzero(own[:, c])
        # runs of consecutive slots on the same side of the band (under and over need opposite flexibility)
        runs = [r for e in _episodes(slots) for r in np.split(e, np.flatnonzero(np.diff(under[e, c])) + 1)]
        for run in runs:
            excess = [band_excess(base.vm_pu[k, worst[k, c]]) for k in run]
            k = int(run[int(np.argmax(excess))])
            if method == "zone":
                zone, zone_engine, one = _cut_out(model, engine, cp, inj, base, k)
                bus = zone.net.bus.index.get_loc(model.net.bus.index[worst[k, c]])
                args = (zone, zone_engine, one, int(bus), range(len(zone.prosumer_ids)))
            else:
                args = (model, engine, inj.take(np.array([k])), int(worst[k, c]), model.zone_prosumers(cp))
            values = voltage_sensitivity(*args, delta_kw)
            out.update({(int(j), c): VoltageIssue(float(base.vm_pu[j, worst[j, c]]), values) for j in run})
    return out
