"""The DSO's acceptance of an offer, checked and applied: which acceptances are refused (and why), which part of
the offer an accepted order takes, and the expiry of offers nobody accepted. Pure: reads its arguments, changes
nothing; the desk stores the outcome.

Order of the checks (first failure decides, later ones are not looked at): the signature of the registered DSO
(:mod:`streams.flex.authentication`), a replayed acceptance id, the contract bounds, the offer (unknown, not the
DSO's, already decided, expired), the acceptance's own validity, then the accepted kW per slot against the offered
kW. Times are UTC epoch ms, power kW.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Literal

from streams.flex.acceptance import FlexAcceptance
from streams.flex.authentication import authenticate
from streams.flex.dsos import DsoRegistry
from streams.flex.offers import Allocation, FlexOffer
from streams.flex.requests import FlexRequest
from streams.flex.validation import Code, Issue, Rejection, rejection
from streams.validation.fields import Checker
from streams.validation.flex import CURRENCY_LENGTH
from streams.validation.limits import Limits, current_limits

OfferFate = Literal["ACCEPTED", "REJECTED", "EXPIRED"]
#: Largest price of one acceptance, currency micro-units (a billion currency units).
MAX_PRICE_MICRO = 10**15
#: kW an accepted slot may exceed the offered kW by (float noise of a round trip through XML or JSON).
KW_TOLERANCE = 1e-6


def check_bounds(acc: FlexAcceptance, now: int, limits: Limits | None = None) -> list[Issue]:
    """Contract bounds: ids, currency, ``created_at`` against the wall clock ``now``, price, each slot's kW finite,
    > 0 and at most ``max_flex_kw``; an ACCEPTED acceptance names at least one slot, each at most once."""
    lim = limits or current_limits()
    c = Checker()
    for name in ("acceptance_id", "offer_id", "dso_id", "area_id"):
        c.identifier(name, getattr(acc, name))
    c.text("currency", acc.currency, max_len=CURRENCY_LENGTH)
    c.event_time("created_at", acc.created_at, now, lim.max_past_ms, lim.max_future_ms)
    c.number("price_micro", acc.price_micro, 0, MAX_PRICE_MICRO, integer=True)
    issues = [Issue(Code.INVALID_FIELD, str(e)) for e in c.errors]
    if acc.decision == "ACCEPTED" and not acc.slots:
        issues.append(Issue(Code.NO_SLOTS, f"acceptance {acc.acceptance_id} accepts no slot"))
    seen: set[int] = set()
    for s in acc.slots:
        if not math.isfinite(s.kw) or s.kw <= 0:
            issues.append(Issue(Code.NEGATIVE_KW, f"slot {s.slot_start}: accepted kw {s.kw} must be > 0"))
        elif s.kw > lim.max_flex_kw:
            issues.append(Issue(Code.KW_TOO_LARGE, f"slot {s.slot_start}: {s.kw} kW > {lim.max_flex_kw} kW"))
        if s.slot_start in seen:
            issues.append(Issue(Code.DUPLICATE_SLOT, f"slot {s.slot_start} appears twice"))
        seen.add(s.slot_start)
    return issues


def check_acceptance(
    acc: FlexAcceptance,
    offer: FlexOffer | None,
    request: FlexRequest | None,
    fate: OfferFate | None,
    now: int,
) -> list[Issue]:
    """Problems with applying an authenticated, fresh acceptance to ``offer`` (None: not known to this desk) of
    ``request``; ``fate``: what already happened to the offer (None: open)."""
    if offer is None or request is None or request.dso_id != acc.dso_id or request.area_id != acc.area_id:
        return [Issue(Code.UNKNOWN_OFFER, f"no offer {acc.offer_id} to {acc.dso_id} in area {acc.area_id}")]
    if fate == "EXPIRED" or (offer.valid_until is not None and now > offer.valid_until):
        return [Issue(Code.OFFER_EXPIRED, f"offer {offer.offer_id} was valid until {offer.valid_until}")]
    if fate is not None:
        return [Issue(Code.OFFER_CLOSED, f"offer {offer.offer_id} was already {fate.lower()}")]
    if now > acc.valid_until:
        return [Issue(Code.ACCEPTANCE_EXPIRED, f"acceptance valid until {acc.valid_until}, now {now}")]
    offered = offer.offered_kw()
    issues = []
    for s in acc.slots:
        have = offered.get(s.slot_start, 0.0)
        if s.kw > have + KW_TOLERANCE:
            issues.append(
                Issue(Code.ORDER_EXCEEDS_OFFER, f"slot {s.slot_start}: {s.kw} kW accepted, {have} kW offered")
            )
    return issues


def decide(
    acc: FlexAcceptance,
    offer: FlexOffer | None,
    request: FlexRequest | None,
    fate: OfferFate | None,
    seen_ids: Collection[str],
    dsos: DsoRegistry,
    now: int,
    limits: Limits | None = None,
) -> Rejection | None:
    """The Rejection of ``acc`` (subject kind ``FlexAcceptance``, party the DSO), or None when it may be applied:
    an ACCEPTED one then becomes an order for :func:`accepted_part` of the offer, a REJECTED one closes the offer.
    ``seen_ids``: acceptance ids already processed (a replay is REPLAYED_MESSAGE)."""
    denied = authenticate(acc, dsos)
    if denied is not None:
        return rejection("FlexAcceptance", acc.acceptance_id, [denied], now, acc.dso_id)
    if acc.acceptance_id in seen_ids:
        issue = Issue(Code.REPLAYED_MESSAGE, f"acceptance {acc.acceptance_id} was already processed")
        return rejection("FlexAcceptance", acc.acceptance_id, [issue], now, acc.dso_id)
    issues = check_bounds(acc, now, limits) or check_acceptance(acc, offer, request, fate, now)
    return rejection("FlexAcceptance", acc.acceptance_id, issues, now, acc.dso_id) if issues else None


def accepted_part(offer: FlexOffer, accepted_kw: Mapping[int, float]) -> FlexOffer:
    """The offer cut to the accepted kW per slot: slots not accepted are dropped, and each prosumer's allocation
    in a slot is scaled by accepted / offered kW of that slot (pro rata, rounded down to the watt, so the order
    never exceeds what was accepted)."""
    offered = offer.offered_kw()
    ratio = {t: min(1.0, kw / offered[t]) for t, kw in accepted_kw.items() if offered.get(t, 0.0) > 0}
    allocations = tuple(
        Allocation(a.prosumer_id, a.slot_start, _watts_down(a.kw * ratio[a.slot_start]))
        for a in offer.allocations
        if a.slot_start in ratio
    )
    return replace(offer, allocations=tuple(a for a in allocations if a.kw > 0))


def _watts_down(kw: float) -> float:
    """kW rounded down to the watt, ignoring float noise below a microwatt (2.3 kW stays 2.3, not 2.299)."""
    return math.floor(kw * 1000 + 1e-6) / 1000


def expiry(offer: FlexOffer, request: FlexRequest, now: int) -> Rejection:
    """The OFFER_EXPIRED Rejection of an offer nobody accepted before its ``valid_until``."""
    issue = Issue(Code.OFFER_EXPIRED, f"offer not accepted by {request.dso_id} until {offer.valid_until}")
    return rejection("FlexOffer", offer.offer_id, [issue], now, request.dso_id)
