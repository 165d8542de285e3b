"""Congestion forecast (pure): per congestion point and slot, the loading, voltage band violations, overload and
the loading's sensitivity to each prosumer's bus, from the prosumers' forecast power over the horizon.

Sensitivity is a finite difference at the peak slot of every overload episode (consecutive overloaded slots of one
asset: within one it varies by about 2 % on the demo grid, and the flow direction that sets its sign does not turn
from above 100 % one way to above 100 % the other in a quarter hour): for every bus with a mapped prosumer in the
asset's zone (the buses supplied through it), one more power flow with ``delta_kw`` more consumption at that bus.
Unit: %-points of loading per kW of added consumption (positive: consuming more loads the asset more, so REDUCE
relieves it; negative, as under reverse PV flow: INCREASE relieves it).
Voltage band: EN 50160, 0.9-1.1 pu of nominal, counted over the buses supplied through the asset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from streams.grid.injections import Injections
from streams.grid.model import CongestionPoint, GridModel
from streams.grid.powerflow import FlowResult, PowerFlowEngine

V_MIN_PU, V_MAX_PU = 0.9, 1.1


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


def _sensitivities(
    model: GridModel,
    engine: PowerFlowEngine,
    inj: Injections,
    base: FlowResult,
    overloaded: np.ndarray,
    delta_kw: float,
) -> dict[tuple[int, int], dict[str, float]]:
    """(slot, congestion point) -> {prosumer id: %-points per kW} for every overloaded pair (``overloaded``: (S, C)
    bool), over the prosumers of the point's zone. Computed once per overload episode (consecutive overloaded
    slots of one point) at its peak slot, with one extra power flow per zone bus that has a prosumer."""
    zones = [model.zone_prosumers(cp) for cp in model.congestion_points]
    first_at_bus: dict[int, int] = {}
    for i, b in enumerate(model.prosumer_buses):
        first_at_bus.setdefault(int(b), i)
    peaks: list[tuple[int, np.ndarray, int]] = []  # (point, episode slots, peak slot)
    for c in range(overloaded.shape[1]):
        for run in _episodes(np.flatnonzero(overloaded[:, c])):
            peaks.append((c, run, int(run[np.argmax(base.loading_percent[run, c])])))
    scenarios = sorted({(k, int(model.prosumer_buses[p])) for c, _, k in peaks for p in zones[c]})
    if not scenarios:
        return {}
    pert = inj.take(np.array([k for k, _ in scenarios]))
    pert.prosumer_kw[np.arange(len(scenarios)), [first_at_bus[b] for _, b in scenarios]] += delta_kw
    res = engine.run(pert)
    row = {sc: i for i, sc in enumerate(scenarios)}
    out: dict[tuple[int, int], dict[str, float]] = {}
    for c, run, k in peaks:
        values = {}
        for p in zones[c]:
            v = (
                res.loading_percent[row[(k, int(model.prosumer_buses[p]))], c] - base.loading_percent[k, c]
            ) / delta_kw
            if np.isfinite(v):
                values[model.prosumer_ids[p]] = float(v)
        out.update({(int(j), c): values for j in run})
    return out


def _slot(
    cp: CongestionPoint, c: int, model: GridModel, res: FlowResult, k: int, start: int
) -> SlotCongestion:
    if not res.converged[k]:
        return SlotCongestion(
            cp.id, cp.area_id, start, False, None, cp.max_loading_percent, 0.0, None, None, 0, 0
        )
    zone = np.isin(model.net.bus.index, list(cp.zone_buses))
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
) -> list[SlotCongestion]:
    """Every congestion point x slot (point-major, slots in order), with sensitivities for overloaded slots."""
    res = engine.run(injections)
    cps = model.congestion_points
    limits = np.array([cp.max_loading_percent for cp in cps])
    with np.errstate(invalid="ignore"):
        overloaded = res.converged[:, None] & (res.loading_percent > limits)
    sens = _sensitivities(model, engine, injections, res, overloaded, delta_kw)
    out = []
    for c, cp in enumerate(cps):
        for k, start in enumerate(slot_starts_ms):
            s = _slot(cp, c, model, res, k, int(start))
            if (k, c) in sens:
                s = replace(s, sensitivity=sens[(k, c)])
            out.append(s)
    return out
