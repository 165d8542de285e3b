"""Simulated portfolio and devices for tests, the benchmark and demos (not used in production paths).

Portfolio: ``n`` prosumers ``p00..``, each one 3 kW curtailable load on a flat 5 kW baseline, incentive
``100_000 + 1_000 * i`` micro/kWh (so the merit order is p00, p01, ...), penalty 300_000, multiplier 1.5,
tolerance 10 %. Requests come from DSO ``dso-1`` (:data:`SIM_DSO_ID`), signed with a key derivable from public
inputs (test use only; never give it value). Devices follow the latest order revision with catch-up set-points; chosen ones stop complying.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_utils import keccak

from streams.flex.acceptance import AcceptedSlot, Decision, FlexAcceptance
from streams.flex.delivery import DeliveryMeter
from streams.flex.dispatch import catch_up_kw
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, Registry
from streams.flex.model import Direction, SlotOutlook
from streams.flex.orders import FlexOrder
from streams.flex.requests import FlexRequest, RequestSlot, to_ms
from streams.flex.signing import sign_acceptance, sign_request

T0 = 1_795_428_000_000  # 2026-11-23T10:00:00Z
SLOT_MS = 900_000
STEP_MS = 5_000
AREA = "terni-1"
BASELINE_KW = 5.0
CAP_KW = 3.0
SIM_DSO_ID = "dso-1"
SIM_DSO_KEY = "0x" + keccak(text="edream-sim/dso-1").hex()


def sim_dso() -> Dso:
    """The simulated DSO's registry entry (its address is the one of :data:`SIM_DSO_KEY`)."""
    return Dso(dso_id=SIM_DSO_ID, eth_address=Account.from_key(SIM_DSO_KEY).address, name="simulated DSO")


def sim_dsos() -> DsoRegistry:
    return DsoRegistry([sim_dso()])


def signed(req: FlexRequest) -> FlexRequest:
    """``req`` signed with the simulated DSO's key."""
    return sign_request(req, SIM_DSO_KEY)


def pid(i: int) -> str:
    return f"p{i:02d}"


def prosumer(i: int, area: str = AREA, cap_kw: float = CAP_KW) -> ProsumerRecord:
    terms = ContractTerms(
        aggregator_id="agg-1",
        tolerance_range=0.1,
        multiplier=1.5,
        incentive_micro_per_kwh=100_000 + 1_000 * i,
        penalty_micro_per_kwh=300_000,
    )
    return ProsumerRecord(pid(i), area, terms, assets=(CurtailableLoad(f"load-{i}", cap_kw),))


def portfolio(n: int = 50, area: str = AREA) -> Registry:
    reg = Registry()
    for i in range(n):
        reg.upsert(prosumer(i, area))
    return reg


def flat_outlook(prosumer_id: str, slot_start: int) -> SlotOutlook:
    return SlotOutlook(baseline_kw=BASELINE_KW)


def reduce_request(
    kw: float = 60.0,
    n_slots: int = 4,
    request_id: str = "req-1",
    start: int = T0,
    area: str = AREA,
    created_at: int | None = None,
) -> FlexRequest:
    """A REDUCE request of the simulated DSO, signed, of ``n_slots`` slots from ``start``; created an hour before
    ``min(start, T0)`` (the simulation's "now" is ``T0 - 1 h``, and a request must not be stamped ahead of the wall
    clock)."""
    return signed(
        FlexRequest(
            request_id=request_id,
            dso_id=SIM_DSO_ID,
            area_id=area,
            direction=Direction.REDUCE,
            slots=tuple(RequestSlot(start + k * SLOT_MS, kw) for k in range(n_slots)),
            reward_micro_per_kwh=250_000,
            deadline=start - 60_000,
            created_at=min(start, T0) - 3_600_000 if created_at is None else created_at,
        )
    )


def acceptance(
    offer: Mapping[str, Any],
    kw: Mapping[int, float] | None = None,
    acceptance_id: str = "acc-1",
    at: int = T0 - 3_600_000,
    decision: Decision = "ACCEPTED",
    area: str = AREA,
    key: str = SIM_DSO_KEY,
) -> FlexAcceptance:
    """The simulated DSO's signed answer (at ``at``, UTC epoch ms) to a FlexOffer record: ``kw`` (slot_start ->
    kW) accepted, by default every offered kW; valid for 10 minutes, at the request's 250,000 micro/kWh."""
    kw = dict(kw) if kw is not None else {to_ms(s["slot_start"]): s["offered_kw"] for s in offer["slots"]}
    slots = () if decision == "REJECTED" else tuple(AcceptedSlot(t, v) for t, v in sorted(kw.items()))
    acc = FlexAcceptance(
        acceptance_id=acceptance_id,
        offer_id=offer["offer_id"],
        dso_id=SIM_DSO_ID,
        area_id=area,
        decision=decision,
        slots=slots,
        valid_until=at + 600_000,
        created_at=at,
        price_micro=round(sum(s.kw for s in slots) * SLOT_MS / 3_600_000 * 250_000),
    )
    return sign_acceptance(acc, key)


@dataclass
class Devices:
    """Simulated meters/devices. ``stop_at``: prosumer_id -> UTC ms after which it delivers nothing. Devices catch
    up with their order's slot average as their own readings measure it (:class:`DeliveryMeter`)."""

    prosumer_ids: list[str]
    stop_at: dict[str, int] = field(default_factory=dict)
    baseline_kw: float = BASELINE_KW
    cap_kw: float = CAP_KW
    meter: DeliveryMeter = field(default_factory=DeliveryMeter)  # delivery per (prosumer, slot) as measured

    def readings(
        self, order: Callable[[], FlexOrder], start: int, end: int, step_ms: int = STEP_MS
    ) -> Iterator[tuple[str, int, float]]:
        """(prosumer_id, ts, net kW) for ts in [start, end], in time order; the order is read at the start of
        every step, so an amendment issued at event time ``ts`` drives the devices from ``ts`` on. The reading at
        ``start`` is the meter's reading before the first step (power of the step before ``start``), so the
        measured energy, integrated between readings, covers ``[start, end]`` (a step change of the devices shows
        up as a ramp over one step, as with real 5-s meters)."""
        for ts in range(start, end + 1, step_ms):
            t_prev = ts - step_ms
            o = order()  # set-points are decided at the start of the step
            for p in self.prosumer_ids:
                slot = start + (t_prev - start) // o.slot_ms * o.slot_ms
                alloc = o.allocation(p, slot)
                flex = 0.0
                if alloc is not None and t_prev < self.stop_at.get(p, end + 1):
                    slot_end = slot + o.slot_ms
                    so_far = self.meter.so_far_kwms(
                        (p, slot), p, slot, slot_end, o.direction, alloc.baseline_kw, t_prev
                    )
                    want = catch_up_kw(alloc.kw, so_far, t_prev, slot, slot_end)
                    flex = min(self.cap_kw, max(0.0, want))
                kw = o.direction.actual_kw(self.baseline_kw, flex)
                self.meter.on_reading(p, ts, kw)
                yield p, ts, kw


def baseline_record(
    prosumer_id: str, isp_start: int, kw: float, computed_at: int, event_id: str = "b"
) -> dict[str, Any]:
    """A Baseline record (avro/Baseline.avsc) of one 15-min slot from ``isp_start`` (UTC epoch ms), ``kw``."""
    return {
        "event_id": event_id,
        "prosumer_id": prosumer_id,
        "isp_start": isp_start,
        "isp_end": isp_start + SLOT_MS,
        "baseline_kw": kw,
        "method": "OTHER",
        "method_params": "",
        "adjustment_kw": 0.0,
        "source_days": [],
        "computed_at": computed_at,
        "version": 1,
    }


def stoppers(ids: Collection[str], at: int) -> dict[str, int]:
    return dict.fromkeys(ids, at)


class StaticView:
    """A registry view (:class:`~edream.runtime.contract.View`) over fixed bytes, for processors without a broker."""

    def __init__(self, items: dict[bytes, bytes]):
        self.data, self.version = dict(items), 1

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self.data.items())

    def put(self, key: bytes, value: bytes | None) -> None:
        """A new record (None: a tombstone); moves the version as a followed topic does."""
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        self.version += 1


def enrolment_view(registry: Registry, serde: Any, updated_at: int = T0 - 86_400_000) -> StaticView:
    """The FlexEnrolment records of ``registry`` as the ``flex.enrolments.v1`` view."""
    from streams.flex.enrolment import enrolment_event

    return StaticView(
        {
            r.prosumer_id.encode(): serde.encode("FlexEnrolment", enrolment_event(r, updated_at))
            for r in registry.records.values()
        }
    )


def dso_view(serde: Any) -> StaticView:
    """The simulated DSO as the ``flex.dsos.v1`` view."""
    return StaticView({SIM_DSO_ID.encode(): serde.encode("FlexDso", sim_dso().to_avro())})
