"""Congestion forecast (pure): per congestion point and slot, the loading, voltage band violations, overload and
the loading's sensitivity to each prosumer's bus, from the prosumers' forecast power over the horizon.

Sensitivity is a finite difference: for every congested slot and every bus with a mapped prosumer, one more power
flow with ``delta_kw`` more consumption at that bus; %-points of loading per kW of added consumption (positive:
consuming more loads the asset more, so REDUCE relieves it; negative, as under reverse PV flow: INCREASE relieves).
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
    %-points per kW of added consumption at its bus (congested slots only)."""

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


def _sensitivities(
    model: GridModel,
    engine: PowerFlowEngine,
    inj: Injections,
    base: FlowResult,
    rows: np.ndarray,
    delta_kw: float,
) -> np.ndarray:
    """(len(rows), C, P): %-points per kW at each prosumer's bus, for scenarios ``rows`` (NaN where a run failed)."""
    buses, first = np.unique(model.prosumer_buses, return_index=True)
    nb = len(buses)
    pert = inj.take(np.repeat(rows, nb))
    pert.prosumer_kw[np.arange(len(rows) * nb), np.tile(first, len(rows))] += delta_kw
    res = engine.run(pert)
    d = res.loading_percent.reshape(len(rows), nb, -1) - base.loading_percent[rows][:, None, :]
    per_bus = np.transpose(d / delta_kw, (0, 2, 1))  # (rows, C, buses)
    bus_pos = np.searchsorted(buses, model.prosumer_buses)
    return per_bus[:, :, bus_pos]


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
        hot = np.flatnonzero(res.converged & (res.loading_percent > limits).any(axis=1))
    sens = _sensitivities(model, engine, injections, res, hot, delta_kw) if len(hot) else None
    out = []
    for c, cp in enumerate(cps):
        for k, start in enumerate(slot_starts_ms):
            s = _slot(cp, c, model, res, k, int(start))
            if sens is not None and s.overloaded:
                row = int(np.searchsorted(hot, k))
                values = sens[row, c]
                sensitivity = {
                    p: float(v) for p, v in zip(model.prosumer_ids, values, strict=True) if np.isfinite(v)
                }
                s = replace(s, sensitivity=sensitivity)
            out.append(s)
    return out
