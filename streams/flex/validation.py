"""Input validation with machine-readable rejection codes (Rejection.avsc). Pure: checks, never mutates."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from streams.flex.enrolment import Registry
from streams.flex.ids import stable_id
from streams.flex.offers import FlexOffer
from streams.flex.requests import FlexRequest
from streams.validation.fields import FieldError
from streams.validation.flex import check_flex_request
from streams.validation.limits import Limits


class Code(StrEnum):
    UNSIGNED_REQUEST = "UNSIGNED_REQUEST"  # a DSO request (or acceptance) without a signature
    UNKNOWN_DSO = "UNKNOWN_DSO"  # dso_id not registered (or revoked) on flex.dsos.v1
    BAD_SIGNATURE = "BAD_SIGNATURE"  # signature does not recover to the DSO's registered address
    NO_SLOTS = "NO_SLOTS"
    NEGATIVE_KW = "NEGATIVE_KW"  # kw < 0, or not a finite number
    ZERO_KW = "ZERO_KW"
    SLOT_IN_PAST = "SLOT_IN_PAST"  # slot starts before now
    SLOT_MISALIGNED = "SLOT_MISALIGNED"  # slot_start not a multiple of slot_minutes
    DUPLICATE_SLOT = "DUPLICATE_SLOT"
    BAD_SLOT_LENGTH = "BAD_SLOT_LENGTH"
    DEADLINE_PASSED = "DEADLINE_PASSED"
    NEGATIVE_REWARD = "NEGATIVE_REWARD"
    UNKNOWN_AREA = "UNKNOWN_AREA"  # no enrolled prosumer in the area
    UNKNOWN_PROSUMER = "UNKNOWN_PROSUMER"
    OVERLAPPING_ORDER = "OVERLAPPING_ORDER"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    UNKNOWN_OFFER = "UNKNOWN_OFFER"
    OFFER_INFEASIBLE = "OFFER_INFEASIBLE"
    INVALID_FIELD = "INVALID_FIELD"  # an id, text or number outside the contract (length, pattern, finite)
    EVENT_TIME_OUT_OF_BOUNDS = (
        "EVENT_TIME_OUT_OF_BOUNDS"  # created_at too far ahead of / behind the wall clock
    )
    BEYOND_HORIZON = "BEYOND_HORIZON"  # a slot or the deadline further ahead than the horizon
    KW_TOO_LARGE = "KW_TOO_LARGE"  # a slot asks for more kW than the configured limit
    OFFER_EXPIRED = "OFFER_EXPIRED"  # the offer's validity ended before the DSO accepted it
    OFFER_CLOSED = "OFFER_CLOSED"  # the offer was already accepted or rejected
    ACCEPTANCE_EXPIRED = "ACCEPTANCE_EXPIRED"  # the DSO's acceptance arrived after its own valid_until
    ORDER_EXCEEDS_OFFER = "ORDER_EXCEEDS_OFFER"  # more kW (or another slot) accepted than offered
    REPLAYED_MESSAGE = "REPLAYED_MESSAGE"  # a DSO message id that was already processed
    INVALID_ENROLMENT = (
        "INVALID_ENROLMENT"  # registry record with bad values or a terms hash that does not match
    )


@dataclass(frozen=True)
class Issue:
    code: Code
    reason: str


@dataclass(frozen=True)
class Rejection:
    """A refused request/offer acceptance. ``rejected_at``: UTC epoch ms."""

    subject_kind: str
    subject_id: str
    code: Code
    reason: str
    rejected_at: int
    party_id: str | None = None

    @property
    def event_id(self) -> str:
        return stable_id("evt", "Rejection", self.subject_kind, self.subject_id, self.code)

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "subject_kind": self.subject_kind,
            "subject_id": self.subject_id,
            "party_id": self.party_id,
            "code": str(self.code),
            "reason": self.reason,
            "rejected_at": self.rejected_at,
        }


def _overlapped(start: int, end: int, spans: Iterable[tuple[int, int]]) -> list[int]:
    """Starts of the ``spans`` ((start, end) UTC epoch ms) that ``[start, end)`` overlaps in time."""
    return [b for b, e in spans if b < end and start < e]


def validate_request(
    req: FlexRequest,
    now: int,
    registry: Registry,
    busy_area_slots: Collection[tuple[str, int, int]] = (),
    known_request_ids: Collection[str] = (),
    limits: Limits | None = None,
) -> list[Issue]:
    """All problems with ``req`` (empty list = valid); ``now`` is the wall clock (UTC epoch ms).

    First the contract bounds (:func:`streams.validation.flex.check_flex_request`: ids, event time, horizon,
    kW limit); a request outside them gets only those issues. Then the business rules. busy_area_slots:
    (area_id, slot start, slot end) of every slot of an active order (UTC epoch ms): a request slot that overlaps
    one in time is OVERLAPPING_ORDER (one congestion order per area and time; slots of different lengths, e.g. a
    1-min request inside a 15-min order, overlap by time, not by equal starts).
    """
    bounds = check_flex_request(req, now, limits)
    if bounds:
        return [Issue(code_of(e), str(e)) for e in bounds]
    issues: list[Issue] = []
    if req.request_id in known_request_ids:
        issues.append(Issue(Code.DUPLICATE_REQUEST, f"request {req.request_id} was already processed"))
    if not req.slots:
        issues.append(Issue(Code.NO_SLOTS, "request has no slots"))
    if req.slot_minutes <= 0 or 1440 % req.slot_minutes:
        issues.append(Issue(Code.BAD_SLOT_LENGTH, f"slot_minutes {req.slot_minutes} must divide a day"))
        return issues
    seen: set[int] = set()
    area_spans = [(b, e) for a, b, e in busy_area_slots if a == req.area_id]
    for s in req.slots:
        if not math.isfinite(s.kw) or s.kw < 0:
            issues.append(Issue(Code.NEGATIVE_KW, f"slot {s.slot_start}: kw {s.kw} must be a number > 0"))
        elif s.kw == 0:
            issues.append(Issue(Code.ZERO_KW, f"slot {s.slot_start}: kw must be > 0"))
        if s.slot_start < now:
            issues.append(Issue(Code.SLOT_IN_PAST, f"slot {s.slot_start} starts before now ({now})"))
        if s.slot_start % req.slot_ms:
            issues.append(
                Issue(Code.SLOT_MISALIGNED, f"slot {s.slot_start} not aligned to {req.slot_minutes} min")
            )
        if s.slot_start in seen:
            issues.append(Issue(Code.DUPLICATE_SLOT, f"slot {s.slot_start} appears twice"))
        seen.add(s.slot_start)
        taken = _overlapped(s.slot_start, s.slot_start + req.slot_ms, area_spans)
        if taken:
            issues.append(
                Issue(
                    Code.OVERLAPPING_ORDER,
                    f"area {req.area_id} already has an active order at {min(taken)} (slot {s.slot_start})",
                )
            )
    if req.deadline < now:
        issues.append(Issue(Code.DEADLINE_PASSED, f"deadline {req.deadline} is before now ({now})"))
    if req.reward_micro_per_kwh < 0:
        issues.append(Issue(Code.NEGATIVE_REWARD, "reward_micro_per_kwh must be >= 0"))
    if not registry.in_area(req.area_id):
        issues.append(Issue(Code.UNKNOWN_AREA, f"no enrolled prosumer in area {req.area_id}"))
    return issues


def code_of(error: FieldError) -> Code:
    """The Rejection code of a contract bound that a request broke."""
    if error.code in ("ts_in_future", "ts_too_old"):
        return Code.EVENT_TIME_OUT_OF_BOUNDS
    if error.code == "beyond_horizon":
        return Code.BEYOND_HORIZON
    if error.field.endswith(".kw"):
        return Code.KW_TOO_LARGE
    return Code.INVALID_FIELD


def validate_acceptance(
    offer: FlexOffer,
    now: int,
    registry: Registry,
    committed: Collection[tuple[str, int, int]] = (),
    first_slot_start: int | None = None,
    slot_ms: int = 0,
) -> list[Issue]:
    """Problems with accepting ``offer``: unknown prosumers, a prosumer already committed to another active order at
    an overlapping time (OVERLAPPING_ORDER; ``committed``: (prosumer_id, slot start, slot end) UTC epoch ms of the
    live orders' allocations, ``slot_ms``: the offer's slot length), delivery already started, or nothing offered."""
    issues: list[Issue] = []
    if offer.status == "INFEASIBLE":
        issues.append(Issue(Code.OFFER_INFEASIBLE, "offer allocates nothing"))
    if first_slot_start is not None and first_slot_start < now:
        issues.append(Issue(Code.SLOT_IN_PAST, f"delivery started at {first_slot_start}, now {now}"))
    for pid in sorted({a.prosumer_id for a in offer.allocations}):
        if pid not in registry:
            issues.append(Issue(Code.UNKNOWN_PROSUMER, f"prosumer {pid} is not enrolled"))
    owed: dict[str, list[tuple[int, int]]] = {}
    for pid, start, end in committed:
        owed.setdefault(pid, []).append((start, end))
    clashes = sorted(
        {
            (a.prosumer_id, a.slot_start)
            for a in offer.allocations
            if _overlapped(a.slot_start, a.slot_start + max(slot_ms, 1), owed.get(a.prosumer_id, ()))
        }
    )
    if clashes:
        issues.append(
            Issue(Code.OVERLAPPING_ORDER, f"{len(clashes)} prosumer-slots already ordered, e.g. {clashes[0]}")
        )
    return issues


def rejection(kind: str, subject_id: str, issues: Iterable[Issue], now: int, party_id: str | None = None):
    """One Rejection carrying the first issue's code and all reasons."""
    issues = list(issues)
    return Rejection(kind, subject_id, issues[0].code, "; ".join(i.reason for i in issues), now, party_id)
