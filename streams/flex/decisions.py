"""The desk's three decisions, as pure functions shared by the in-process :class:`~streams.flex.desk.FlexDesk`
and the per-area runtime stage (:mod:`streams.flex.area_stage`): a DSO request becomes an offer or a Rejection, an
accepted offer an order or a Rejection, a prosumer's projected shortfall an amended order (or nothing).

They read the desk's state through arguments (registry, DSO registry, area slots and prosumer slots already
committed, the slot outlook) and change nothing; storing the result is the caller's business. Times are UTC epoch
ms, power kW.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

from streams.flex.authentication import authenticate
from streams.flex.dsos import DsoRegistry
from streams.flex.enrolment import ProsumerRecord, Registry
from streams.flex.offers import FlexOffer, OfferParams, OutlookFn, build_offer
from streams.flex.orders import FlexOrder, create_order
from streams.flex.redispatch import plan_redispatch
from streams.flex.requests import FlexRequest
from streams.flex.validation import Rejection, rejection, validate_acceptance, validate_request
from streams.flex.verification import DeviationEvent


def decision_time(arrived_at: int, wall: int, first_slot_start: int, max_past_ms: int) -> int:
    """The time (UTC epoch ms) a DSO request is decided at: when it reached the platform (``arrived_at``, its
    record's time), so its offer, order or rejection (validity, ``created_at``, the time before delivery) do not
    depend on how long it waited for a tick, a rebalance or a restarted worker; replayed, it is decided the same.
    The wall clock ``wall`` instead when the record's time cannot be trusted (ahead of the wall clock, or older
    than ``max_past_ms``) or when delivery has started meanwhile (then too late: the request is decided, and
    refused, now)."""
    if arrived_at > wall or arrived_at < wall - max_past_ms or wall >= first_slot_start:
        return wall
    return arrived_at


def offer_for(
    req: FlexRequest,
    now: int,
    dsos: DsoRegistry,
    registry: Registry,
    busy_area_slots: Collection[tuple[str, int, int]],
    known_request_ids: Collection[str],
    outlook: OutlookFn,
    params: OfferParams,
) -> FlexOffer | Rejection:
    """The offer for a DSO request. A request not signed by its registered DSO is rejected (UNSIGNED_REQUEST,
    UNKNOWN_DSO, BAD_SIGNATURE) before its content is looked at; then its bounds and the business rules
    (:func:`~streams.flex.validation.validate_request`) are checked against the wall clock ``now``."""
    denied = authenticate(req, dsos)
    if denied is not None:
        return rejection("FlexRequest", req.request_id, [denied], now, req.dso_id)
    issues = validate_request(req, now, registry, busy_area_slots, known_request_ids)
    if issues:
        return rejection("FlexRequest", req.request_id, issues, now, req.dso_id)
    return build_offer(req, registry.in_area(req.area_id), outlook, now, params)


def order_for(
    offer: FlexOffer,
    req: FlexRequest,
    now: int,
    registry: Registry,
    committed: Collection[tuple[str, int, int]],
    outlook: OutlookFn,
) -> FlexOrder | Rejection:
    """The revision-1 order of an accepted offer, or the Rejection of the acceptance (infeasible offer, delivery
    started, prosumer unknown, or a prosumer already ordered at an overlapping time: ``committed`` holds
    (prosumer_id, slot start, slot end) UTC epoch ms of the live orders' allocations)."""
    issues = validate_acceptance(offer, now, registry, committed, min(req.slot_starts()), req.slot_ms)
    if issues:
        return rejection("FlexOffer", offer.offer_id, issues, now)
    return create_order(offer, req, outlook, now)


def redispatched(
    shortfalls: Sequence[DeviationEvent],
    order: FlexOrder,
    req: FlexRequest,
    released: Collection[str],
    candidates: Iterable[ProsumerRecord],
    outlook: OutlookFn,
    committed_kw: Callable[[str, int], float],
    params: OfferParams,
    delivered_kw: Callable[[str, int], float],
) -> FlexOrder | None:
    """The amended order after ``shortfalls`` (PROJECTED SHORTFALLs of ``order``, one per new deviator), as of the
    latest of their event times: only the new deviators' allocations move, to ``candidates`` of the area that are
    not ``released`` (earlier deviators) and not deviating now. A deviator's projected delivery counts in its
    event's slot while that slot is still running (a deviator seen in an earlier slot delivers nothing in the
    running one). None when nothing is missing. ``committed_kw(pid, slot)``: kW that prosumer owes over every live
    order; ``delivered_kw(pid, slot)``: flexibility delivered so far in the running slot (energy / slot length,
    kW)."""
    now = max(ev.ts for ev in shortfalls)
    slot_ms = order.slot_ms
    deviating = {
        ev.prosumer_id: ev.delivered_kw if ev.slot_start <= now < ev.slot_start + slot_ms else None
        for ev in shortfalls
    }
    plan = plan_redispatch(
        order,
        req,
        deviating,
        now,
        [r for r in candidates if r.prosumer_id not in released and r.prosumer_id not in deviating],
        outlook,
        committed_kw,
        params,
        delivered_kw,
    )
    return None if plan is None else plan.order
