"""Avro records of the VPP events (avro/VppCapabilityRequest, VppCapability, VppExportCapacity) and the JSON
portfolio format used by the CLI. Record times are UTC epoch ms ints; ids are deterministic."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from streams.vpp.assets import SERVICES, Asset, AssetKind, Direction, ServiceSpec
from streams.vpp.capability import CapabilityRequest, CapabilityResult
from streams.vpp.export import ExportCapacity

TOPIC_CAPABILITY_REQUESTS = "vpp.capability.requests.v1"
TOPIC_CAPABILITY = "vpp.capability.v1"
TOPIC_EXPORT = "vpp.export.v1"


def request_record(req: CapabilityRequest, vpp_id: str, requested_at_ms: int) -> dict[str, Any]:
    s = req.service
    return {
        "event_id": req.request_id,
        "request_id": req.request_id,
        "vpp_id": vpp_id,
        "service": s.name,
        "direction": str(s.direction),
        "max_response_s": float(s.max_response_s),
        "min_duration_min": float(s.min_duration_min),
        "min_size_kw": float(s.min_size_kw),
        "window_start": req.window_start_ms,
        "window_end": req.window_end_ms,
        "slot_minutes": req.slot_minutes,
        "demand_kw": list(req.demand_kw or ()),
        "price_micro_per_kw_h": req.price_micro_per_kw_h,
        "requested_at": requested_at_ms,
    }


def request_from_record(rec: dict[str, Any]) -> CapabilityRequest:
    service = ServiceSpec(
        rec["service"],
        Direction(rec["direction"]),
        rec["max_response_s"],
        rec["min_duration_min"],
        rec.get("min_size_kw", 0.0),
    )
    return CapabilityRequest(
        request_id=rec["request_id"],
        service=service,
        window_start_ms=rec["window_start"],
        window_end_ms=rec["window_end"],
        slot_minutes=rec.get("slot_minutes", 15),
        now_ms=rec["requested_at"],
        demand_kw=tuple(rec["demand_kw"]) or None,
        price_micro_per_kw_h=rec.get("price_micro_per_kw_h"),
    )


def capability_record(result: CapabilityResult, vpp_id: str, computed_at_ms: int) -> dict[str, Any]:
    return {
        "event_id": f"{result.request_id}/capability",
        "request_id": result.request_id,
        "vpp_id": vpp_id,
        "service": result.service,
        "feasible": result.feasible,
        "shortfall_reason": result.shortfall_reason,
        "capacity_kw": result.capacity_kw,
        "slots": [
            {
                "start": s.start_ms,
                "end": s.end_ms,
                "capacity_kw": s.capacity_kw,
                "capacity_low_kw": s.capacity_low_kw,
                "capacity_high_kw": s.capacity_high_kw,
            }
            for s in result.slots
        ],
        "assignments": [
            {
                "asset_id": a.asset_id,
                "kind": str(a.kind),
                "reserve_kw": list(a.reserve_kw),
                "setpoint_kw": list(a.setpoint_kw or ()),
                "response_s": float(a.response_s),
            }
            for a in result.assignments
        ],
        "excluded": [{"asset_id": aid, "reason": str(r)} for aid, r in result.excluded],
        "generation_cost_micro": result.generation_cost_micro,
        "solve_ms": int(round((result.build_seconds + result.solve_seconds) * 1000)),
        "computed_at": computed_at_ms,
        "version": 1,
    }


def export_record(e: ExportCapacity) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "vpp_id": e.vpp_id,
        "market": str(e.market),
        "slot_start": e.slot_start_ms,
        "slot_end": e.slot_end_ms,
        "evaluated_at": e.evaluated_at_ms,
        "export_p50_kw": e.export_p50_kw,
        "export_p10_kw": e.export_p10_kw,
        "offered_kw": e.offered_kw,
        "offer_quantile": e.offer_quantile,
        "price_forecast_micro": e.price_forecast_micro_per_kwh,
        "threshold_micro": e.threshold_micro_per_kwh,
        "decision": str(e.decision),
        "setpoints": [{"asset_id": a, "setpoint_kw": kw} for a, kw in e.setpoints],
        "excluded": [{"asset_id": a, "reason": str(r)} for a, r in e.excluded],
        "supply_curve": [{"price_micro": p, "export_kw": kw} for p, kw in e.supply_curve],
        "version": 1,
    }


_ASSET_FIELDS = {f.name for f in fields(Asset)}


def asset_from_dict(d: dict[str, Any]) -> Asset:
    """Asset from a JSON object with the ``Asset`` field names (``directions`` a list, ``kind`` a string)."""
    unknown = set(d) - _ASSET_FIELDS
    if unknown:
        raise ValueError(f"asset {d.get('asset_id')}: unknown fields {sorted(unknown)}")
    kw = dict(d)
    kw["kind"] = AssetKind(kw["kind"])
    if "directions" in kw:
        kw["directions"] = frozenset(Direction(x) for x in kw["directions"])
    if kw.get("forecast_kw") is not None:
        kw["forecast_kw"] = tuple(kw["forecast_kw"])
    return Asset(**kw)


def asset_to_dict(a: Asset) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Asset):
        v = getattr(a, f.name)
        if v == f.default:
            continue
        if f.name == "directions":
            v = sorted(str(x) for x in v)
        elif f.name == "kind":
            v = str(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def service_from_name(name: str) -> ServiceSpec:
    try:
        return SERVICES[name.upper()]
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
