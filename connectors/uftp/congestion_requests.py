"""The DSO side of UFTP, pure: the grid stage's congestion forecast (``grid.congestion.v1`` records) -> the UFTP
FlexRequests a DSO sends its aggregators for exactly the flexibility that relieves it.

* Only each congestion point's **latest forecast issue** counts (its records share ``forecast_issued_at``); a point
  the DSO has no UFTP congestion point (EAN) for is left out.
* Per overloaded slot (or one whose voltage-band violation the point answers for) the kW come from
  :func:`streams.grid.requests.slot_need` (the same sizing as the grid stage's own DSO role: the excess over
  ``limit - margin`` divided by the smallest sensitivity of the point's zone, read from the record's
  ``sensitivities``; for the voltage, the worst bus's distance to the band over its ``voltage_sensitivities``), in W with the USEF sign (negative: reduce consumption). Slots that ended,
  or start within ``lead_ms``, are not asked for (the aggregator could not offer in time).
* One FlexRequest per point, direction and local day (a UFTP message holds the ISPs of one ``period``), ISPs of the
  slot length (15 min), expiring ``lead_ms`` before its first ISP.
* The MessageID is a UUID derived from the point, direction, issue and ISPs: the same forecast gives the same
  message (a re-send after a restart is refused by the gateway as a replay, never asked twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shapeshifter_uftp import FlexRequest as UftpRequest

from connectors.uftp.dso_messages import TIME_ZONE, flex_request
from connectors.uftp.isp import IspFrame, frame_of
from streams.flex.model import Direction
from streams.grid.congestion import SlotCongestion
from streams.grid.requests import RequestPolicy, slot_need
from streams.grid.voltage import VoltageIssue, worst_vm

SLOT_MS = 900_000
_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "https://edream.eu/uftp/congestion-requests")


@dataclass(frozen=True)
class DsoRequestPolicy:
    """``lead_ms``: a slot is asked for only if it starts at least this long after now (UTC epoch ms), and the
    request expires this long before its first ISP; ``sizing``: margin and minimum kW of the grid stage's rule."""

    time_zone: str = TIME_ZONE
    lead_ms: int = 5 * 60_000
    sizing: RequestPolicy = RequestPolicy()


def _slot(rec: Mapping[str, Any]) -> SlotCongestion:
    return SlotCongestion(
        congestion_point_id=rec["congestion_point_id"],
        area_id=rec["area_id"],
        slot_start=int(rec["slot_start"]),
        converged=bool(rec["converged"]),
        loading_percent=rec["loading_percent"],
        max_loading_percent=float(rec["max_loading_percent"]),
        overload_kw=float(rec["overload_kw"]),
        vm_min_pu=rec.get("vm_min_pu"),
        vm_max_pu=rec.get("vm_max_pu"),
        undervoltage_buses=int(rec.get("undervoltage_buses", 0)),
        overvoltage_buses=int(rec.get("overvoltage_buses", 0)),
        sensitivity={s["prosumer_id"]: float(s["percent_per_kw"]) for s in rec.get("sensitivities") or []},
        voltage=_voltage(rec),
    )


def _voltage(rec: Mapping[str, Any]) -> VoltageIssue | None:
    """The violation the record's point answers for (its voltage sensitivities are published only then)."""
    sens = {s["prosumer_id"]: float(s["pu_per_kw"]) for s in rec.get("voltage_sensitivities") or []}
    vm = worst_vm(rec.get("vm_min_pu"), rec.get("vm_max_pu"))
    return VoltageIssue(vm, sens) if sens and vm is not None else None


def latest_issue(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Congestion point id -> the records of its latest ``forecast_issued_at`` (latest per slot within it)."""
    latest: dict[str, int] = {}
    by_slot: dict[tuple[str, int], Mapping[str, Any]] = {}
    for r in records:
        point, issued = r["congestion_point_id"], int(r["forecast_issued_at"])
        if issued < latest.get(point, issued):
            continue
        if issued > latest.get(point, issued):
            by_slot = {k: v for k, v in by_slot.items() if k[0] != point}
        latest[point] = issued
        by_slot[(point, int(r["slot_start"]))] = r
    out: dict[str, list[Mapping[str, Any]]] = {}
    for (point, _), r in sorted(by_slot.items()):
        out.setdefault(point, []).append(r)
    return out


def congestion_requests(
    records: Iterable[Mapping[str, Any]],
    eans: Mapping[str, str],
    now_ms: int,
    policy: DsoRequestPolicy | None = None,
) -> list[UftpRequest]:
    """The UFTP FlexRequests for the overloaded slots of the latest forecast of every point in ``eans`` (grid
    congestion point id -> UFTP CongestionPoint EAN); ``now_ms`` UTC epoch ms."""
    policy = policy or DsoRequestPolicy()
    minutes = SLOT_MS // 60_000
    out = []
    for point, recs in latest_issue(records).items():
        if point not in eans:
            continue
        issued = int(recs[0]["forecast_issued_at"])
        # (direction, local day) -> {ISP number: W}
        asks: dict[tuple[Direction, Any], dict[int, int]] = {}
        for rec in recs:
            start = int(rec["slot_start"])
            if start < now_ms + policy.lead_ms:
                continue
            s = _slot(rec)
            need = slot_need(s, list(s.sensitivity), policy.sizing.margin_percent)
            if need is None or need[1] < policy.sizing.min_kw:
                continue
            direction, kw = need
            frame = frame_of(start, policy.time_zone, minutes)
            watts = round(kw * 1000) * (-1 if direction is Direction.REDUCE else 1)
            asks.setdefault((direction, frame.period), {})[frame.isp_of(start)] = watts
        for (direction, period), isps in sorted(asks.items(), key=lambda kv: (kv[0][1], kv[0][0].value)):
            first_ms = IspFrame(period, policy.time_zone, minutes).start_ms(min(isps))
            key = f"{point}/{direction.value}/{issued}/{period}/{sorted(isps.items())}"
            out.append(
                flex_request(
                    period,
                    isps,
                    first_ms - policy.lead_ms,
                    congestion_point=eans[point],
                    isp_minutes=minutes,
                    message_id=str(uuid.uuid5(_IDS, key)),
                    time_zone=policy.time_zone,
                )
            )
    return out
