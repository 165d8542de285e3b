"""From forecast congestion to the DSO's flexibility requests (pure), in the flex request contract
(``avro/FlexRequest.avsc``, :class:`streams.flex.requests.FlexRequest`), signed with the DSO's key (EIP-712,
:mod:`streams.flex.signing`) so the flex desk accepts it.

Sizing rule (one request per congestion point and direction, for that point's area only):

* direction: from the sign of the loading's sensitivity to the zone's prosumers: positive (importing more loads the
  asset) -> REDUCE; negative (reverse flow from PV) -> INCREASE;
* kW per overloaded slot: ``(loading - (max_loading - margin)) / s_min``, where ``s_min`` is the *smallest*
  |sensitivity| among the prosumers supplied through the asset: the desk may allocate the flexibility to any of
  the area's prosumers, so the request is sized for the least effective one (losses make those near the transformer
  slightly less effective); ``margin`` (default 5 %-points) covers forecast error;
* price: the congestion point's ``reward_micro_per_kwh``;
* ids: deterministic from the point, direction, slots and the forecast's ``issued_at``, so re-running the same forecast
  re-creates the same request (the desk answers DUPLICATE_REQUEST).

Voltage-band violations are needs too (:mod:`streams.grid.voltage`): the point with the smallest violating zone
holding the worst bus asks, REDUCE under the band and INCREASE over it, sized from that bus's voltage sensitivity;
with an overload in the same slot the larger of the two kW is asked when they agree, the overload's when they do not.
Slots whose power flow did not converge never produce a request (flagged in the congestion output instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streams.flex.ids import stable_id
from streams.flex.model import Direction
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.signing import sign_request
from streams.grid.congestion import SlotCongestion
from streams.grid.model import GridModel
from streams.grid.voltage import MARGIN_PU, voltage_need


@dataclass(frozen=True)
class RequestPolicy:
    """``margin_percent``: %-points below ``max_loading_percent`` the request aims at; ``deadline_ms``: offers are
    accepted until this long after ``created_at``; ``min_kw``: smaller slot needs are not requested."""

    margin_percent: float = 5.0
    deadline_ms: int = 30 * 60_000
    min_kw: float = 0.1


def slot_need(
    s: SlotCongestion, zone: Sequence[str], margin_percent: float, margin_pu: float = MARGIN_PU
) -> tuple[Direction, float] | None:
    """Direction and kW of flexibility that brings ``s`` to ``max_loading - margin`` and its worst bus back to
    ``margin_pu`` inside the voltage band (None: neither, or no prosumer of the zone can help). When both need the
    same direction the larger kW is asked; when they pull apart the asset's loading wins (it protects equipment;
    the voltage need is still on the congestion record)."""
    thermal = _thermal_need(s, zone, margin_percent)
    voltage = voltage_need(s.voltage, margin_pu) if s.converged else None
    if thermal and voltage and thermal[0] is voltage[0]:
        return thermal[0], max(thermal[1], voltage[1])
    return thermal or voltage


def _thermal_need(
    s: SlotCongestion, zone: Sequence[str], margin_percent: float
) -> tuple[Direction, float] | None:
    """Direction and kW that bring the loading to ``max_loading - margin`` (None: not overloaded, or no prosumer
    of the zone can relieve it)."""
    if not s.overloaded or s.loading_percent is None:
        return None
    sens = [s.sensitivity[p] for p in zone if p in s.sensitivity]
    if not sens:
        return None
    direction = Direction.REDUCE if sum(sens) > 0 else Direction.INCREASE
    effective = [abs(v) for v in sens if (v > 0) == (direction is Direction.REDUCE) and v != 0]
    if not effective:
        return None
    excess = s.loading_percent - (s.max_loading_percent - margin_percent)
    return direction, excess / min(effective)


def congestion_requests(
    model: GridModel,
    congestion: Sequence[SlotCongestion],
    dso_id: str,
    dso_key: str | bytes,
    created_at: int,
    issued_at: int,
    policy: RequestPolicy | None = None,
) -> list[FlexRequest]:
    """Signed requests for every congestion point with overloaded slots (UTC epoch ms times; ``issued_at`` is the
    forecast's issue time)."""
    policy = policy or RequestPolicy()
    out = []
    for cp in model.congestion_points:
        zone = [model.prosumer_ids[i] for i in model.zone_prosumers(cp)]
        by_direction: dict[Direction, list[RequestSlot]] = {}
        for s in congestion:
            if s.congestion_point_id != cp.id:
                continue
            need = slot_need(s, zone, policy.margin_percent)
            if need is not None and need[1] >= policy.min_kw:
                by_direction.setdefault(need[0], []).append(RequestSlot(s.slot_start, round(need[1], 3)))
        for direction, slots in by_direction.items():
            slots.sort(key=lambda r: r.slot_start)
            request = FlexRequest(
                request_id=stable_id(
                    "req", dso_id, cp.id, direction, issued_at, *(r.slot_start for r in slots)
                ),
                dso_id=dso_id,
                area_id=cp.area_id,
                direction=direction,
                slots=tuple(slots),
                reward_micro_per_kwh=cp.reward_micro_per_kwh,
                deadline=created_at + policy.deadline_ms,
                created_at=created_at,
            )
            out.append(sign_request(request, dso_key))
    return out
