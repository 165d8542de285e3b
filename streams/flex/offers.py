"""Request -> optimised aggregator offer (LL-UC06), as a pure function of the request and the portfolio."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from streams.flex.enrolment import ProsumerRecord
from streams.flex.evaluation import available_kw
from streams.flex.ids import stable_id
from streams.flex.model import SlotOutlook
from streams.flex.optimiser import Backend, Problem, Solution, optimise
from streams.flex.requests import FlexRequest, to_ms

OutlookFn = Callable[[str, int], SlotOutlook]
"""(prosumer_id, slot_start_ms) -> SlotOutlook from the forecasting/baseline areas."""

OfferStatus = Literal["FULL", "PARTIAL", "INFEASIBLE"]


@dataclass(frozen=True)
class OfferParams:
    """risk_price_micro_per_kwh: price of forecast risk; a kWh allocated to a prosumer whose relative forecast
    uncertainty is u = min(1, sigma/|baseline|) costs ``incentive * multiplier + risk_price * u``.
    activation_micro: fixed cost per selected prosumer (makes the model a MILP); 0 = LP.
    acceptance_lead_ms: the DSO may accept an offer until this long before its first slot starts (the offer's
    ``valid_until``), ms."""

    aggregator_id: str = "aggregator-1"
    risk_price_micro_per_kwh: int = 50_000
    activation_micro: int = 0
    backend: Backend = "highspy"
    acceptance_lead_ms: int = 0


@dataclass(frozen=True)
class OfferSlot:
    slot_start: int
    requested_kw: float
    offered_kw: float
    shortfall_kw: float


@dataclass(frozen=True)
class Allocation:
    """kw: flexibility allocated to ``prosumer_id`` for the whole slot (slot average), kW."""

    prosumer_id: str
    slot_start: int
    kw: float


@dataclass(frozen=True)
class FlexOffer:
    offer_id: str
    request_id: str
    aggregator_id: str
    status: OfferStatus
    slots: tuple[OfferSlot, ...]
    allocations: tuple[Allocation, ...]
    cost_micro: int
    created_at: int
    valid_until: int | None = (
        None  # UTC epoch ms; None: no acceptance deadline (offers from before it existed)
    )

    @property
    def event_id(self) -> str:
        return stable_id("evt", "FlexOffer", self.offer_id)

    def offered_kw(self) -> dict[int, float]:
        """slot_start -> offered kW."""
        return {s.slot_start: s.offered_kw for s in self.slots}

    @property
    def total_shortfall_kw(self) -> float:
        return round(sum(s.shortfall_kw for s in self.slots), 3)

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "offer_id": self.offer_id,
            "request_id": self.request_id,
            "aggregator_id": self.aggregator_id,
            "status": self.status,
            "slots": [vars(s) for s in self.slots],
            "allocations": [vars(a) for a in self.allocations],
            "cost_micro": self.cost_micro,
            "created_at": self.created_at,
            "valid_until": self.valid_until,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FlexOffer:
        """Timestamps as epoch ms ints or datetimes."""
        return cls(
            offer_id=r["offer_id"],
            request_id=r["request_id"],
            aggregator_id=r["aggregator_id"],
            status=r["status"],
            slots=tuple(
                OfferSlot(
                    to_ms(s["slot_start"]),
                    float(s["requested_kw"]),
                    float(s["offered_kw"]),
                    float(s["shortfall_kw"]),
                )
                for s in r["slots"]
            ),
            allocations=tuple(
                Allocation(a["prosumer_id"], to_ms(a["slot_start"]), float(a["kw"])) for a in r["allocations"]
            ),
            cost_micro=int(r["cost_micro"]),
            created_at=to_ms(r["created_at"]),
            valid_until=None if r.get("valid_until") is None else to_ms(r["valid_until"]),
        )


def slot_hours(slot_minutes: int) -> float:
    return slot_minutes / 60.0


def unit_cost_micro_per_kw(
    record: ProsumerRecord, outlook: SlotOutlook, slot_minutes: int, risk_price_micro_per_kwh: int
) -> float:
    """Cost of 1 kW for one slot, micro-units: (incentive x multiplier + risk_price x u) x slot hours."""
    u = min(1.0, outlook.sigma_kw / max(abs(outlook.baseline_kw), 0.1))
    per_kwh = record.terms.incentive_micro_per_kwh * record.terms.multiplier + risk_price_micro_per_kwh * u
    return per_kwh * slot_hours(slot_minutes)


def build_problem(
    request: FlexRequest,
    candidates: Iterable[ProsumerRecord],
    outlook: OutlookFn,
    params: OfferParams,
    requested_kw: Iterable[float] | None = None,
    cap_override: Callable[[str, int, float], float] | None = None,
) -> Problem:
    """Arrays for :func:`optimise`. ``cap_override(prosumer_id, slot_start, cap_kw) -> cap_kw`` lets re-dispatch
    subtract existing commitments and scale the running slot."""
    recs = list(candidates)
    starts = request.slot_starts()
    cap = np.zeros((len(recs), len(starts)))
    cost = np.zeros_like(cap)
    for i, rec in enumerate(recs):
        for j, t in enumerate(starts):
            o = outlook(rec.prosumer_id, t)
            c = available_kw(rec, t, request.slot_minutes, o, request.direction)
            cap[i, j] = cap_override(rec.prosumer_id, t, c) if cap_override else c
            cost[i, j] = unit_cost_micro_per_kw(rec, o, request.slot_minutes, params.risk_price_micro_per_kwh)
    req = np.array(
        list(requested_kw) if requested_kw is not None else [s.kw for s in request.slots], dtype=float
    )
    act = np.full(len(recs), float(params.activation_micro)) if params.activation_micro else None
    return Problem(tuple(r.prosumer_id for r in recs), req, cap, cost, act)


def offer_from_solution(
    request: FlexRequest,
    problem: Problem,
    sol: Solution,
    aggregator_id: str,
    now: int,
    acceptance_lead_ms: int = 0,
):
    """FlexOffer from a solved problem; status FULL (no shortfall), PARTIAL or INFEASIBLE (nothing offered);
    valid until ``acceptance_lead_ms`` before the request's first slot."""
    starts = request.slot_starts()
    slots = tuple(
        OfferSlot(
            t,
            float(problem.requested_kw[j]),
            round(float(sol.allocation_kw[:, j].sum()), 3),
            float(sol.shortfall_kw[j]),
        )
        for j, t in enumerate(starts)
    )
    allocs = tuple(
        Allocation(problem.prosumer_ids[i], starts[j], float(sol.allocation_kw[i, j]))
        for i, j in zip(*np.nonzero(sol.allocation_kw > 0), strict=True)
    )
    offered = sum(s.offered_kw for s in slots)
    status: OfferStatus = (
        "FULL" if sol.shortfall_kw.sum() < 1e-3 else ("PARTIAL" if offered > 0 else "INFEASIBLE")
    )
    return FlexOffer(
        offer_id=stable_id("off", request.request_id, aggregator_id),
        request_id=request.request_id,
        aggregator_id=aggregator_id,
        status=status,
        slots=slots,
        allocations=allocs,
        cost_micro=sol.cost_micro,
        created_at=now,
        valid_until=min(starts, default=now) - acceptance_lead_ms,
    )


def build_offer(
    request: FlexRequest,
    candidates: Iterable[ProsumerRecord],
    outlook: OutlookFn,
    now: int,
    params: OfferParams | None = None,
) -> FlexOffer:
    """Optimise the portfolio ``candidates`` against ``request`` (assumed valid, see validation)."""
    params = params or OfferParams()
    problem = build_problem(request, candidates, outlook, params)
    sol = optimise(problem, params.backend)
    return offer_from_solution(request, problem, sol, params.aggregator_id, now, params.acceptance_lead_ms)
