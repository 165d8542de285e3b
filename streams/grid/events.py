"""A congestion forecast slot as the ``GridCongestion`` record (``avro/GridCongestion.avsc``, ``grid.congestion.v1``).

``event_id`` is deterministic from the point, the slot and the latest ``issued_at`` of the forecasts the power flow
used, so recomputing the same inputs (a replay after a crash) yields the same id and the sink collapses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.grid.congestion import SlotCongestion

SLOT_MS = 900_000


def congestion_record(
    s: SlotCongestion, grid_id: str, prosumers: int, missing: int, forecast_issued_at: int, computed_at: int
) -> dict[str, Any]:
    """The GridCongestion record of ``s`` (times UTC epoch ms; ``missing``: prosumers counted as 0 kW)."""
    return {
        "event_id": f"{s.congestion_point_id}/{s.slot_start}/{forecast_issued_at}",
        "grid_id": grid_id,
        "congestion_point_id": s.congestion_point_id,
        "area_id": s.area_id,
        "slot_start": s.slot_start,
        "slot_end": s.slot_start + SLOT_MS,
        "converged": s.converged,
        "loading_percent": s.loading_percent,
        "max_loading_percent": s.max_loading_percent,
        "overload_kw": s.overload_kw,
        "vm_min_pu": s.vm_min_pu,
        "vm_max_pu": s.vm_max_pu,
        "overloaded": s.overloaded,
        "undervoltage_buses": s.undervoltage_buses,
        "overvoltage_buses": s.overvoltage_buses,
        "prosumers": prosumers,
        "missing_forecasts": missing,
        "sensitivities": [
            {"prosumer_id": p, "percent_per_kw": float(v)} for p, v in sorted(s.sensitivity.items())
        ],
        "voltage_sensitivities": [
            {"prosumer_id": p, "pu_per_kw": float(v)}
            for p, v in sorted((s.voltage.sensitivity if s.voltage else {}).items())
        ],
        "forecast_issued_at": forecast_issued_at,
        "computed_at": computed_at,
    }
