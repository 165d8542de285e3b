"""Order validation (HL-UC02 LL-UC02): accept into the slot's book or reject with a machine-readable code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder
from streams.market.participants import Participant
from streams.market.signing import verify_order
from streams.validation.fields import FieldError, describe


class RejectCode(StrEnum):
    UNKNOWN_PARTICIPANT = "UNKNOWN_PARTICIPANT"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    INACTIVE_PARTICIPANT = "INACTIVE_PARTICIPANT"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"
    NON_POSITIVE_QUANTITY = "NON_POSITIVE_QUANTITY"
    PRICE_OUT_OF_BOUNDS = "PRICE_OUT_OF_BOUNDS"
    GATE_CLOSED = "GATE_CLOSED"
    REPLAYED_NONCE = "REPLAYED_NONCE"
    # contract bounds (streams.validation.market), checked before anything else
    EVENT_TIME_OUT_OF_BOUNDS = (
        "EVENT_TIME_OUT_OF_BOUNDS"  # arrival or client time too far from the wall clock
    )
    BEYOND_HORIZON = "BEYOND_HORIZON"  # slot further ahead than the horizon
    QUANTITY_TOO_LARGE = "QUANTITY_TOO_LARGE"  # above the configured maximum order quantity
    INVALID_FIELD = "INVALID_FIELD"  # an id, hex field or number of the wrong shape


@dataclass(frozen=True)
class Verdict:
    """``accepted`` orders go into the book; ``duplicate`` = the very same order seen again (at-least-once
    redelivery): neither a new book entry nor a rejection."""

    accepted: bool
    code: RejectCode | None = None
    reason: str = ""
    duplicate: bool = False


ACCEPTED = Verdict(True)


class Participants(Protocol):
    """Where the validator looks participants up: the registry view of the stage, or an in-memory registry."""

    def get(self, participant_id: str) -> Participant | None: ...

    def by_meter(self, meter_id: str) -> Participant | None: ...


class OrderValidator:
    """Order checks in the order of :class:`RejectCode`; the state they need (the gate, the nonces already used
    in the session) is handed in by the caller, so the validator itself holds none:

    1. ``participant_id`` registered, else UNKNOWN_PARTICIPANT;
    2. the id is the EIP-712 digest of the terms and the signature recovers to the participant's registered
       address (and the order's ``address``), else BAD_SIGNATURE;
    3. participant ACTIVE, else INACTIVE_PARTICIPANT;
    4. ``session_id``/``slot_minutes`` match the market's slot grid, else UNKNOWN_SESSION;
    5. quantity > 0 Wh, else NON_POSITIVE_QUANTITY; 6. floor <= limit price <= cap, else PRICE_OUT_OF_BOUNDS;
    7. ``client_ts`` strictly before the gate closure and the session not yet closed by its clock (so a back-dated
       order that arrives after the gate still fails), else GATE_CLOSED;
    8. (address, nonce) not used by another order of the session, else REPLAYED_NONCE. The order id commits to
       the session (it is signed), so a signed order can never be replayed into another session.
    """

    def __init__(self, config: MarketConfig, participants: Participants):
        self.config, self.participants = config, participants

    def check_terms(self, order: MarketOrder) -> Verdict:
        """Checks 1-6, which do not depend on the session's state: an order failing them must not move its clock."""
        cfg = self.config
        p = self.participants.get(order.participant_id)
        if p is None:
            return Verdict(
                False, RejectCode.UNKNOWN_PARTICIPANT, f"participant {order.participant_id} not registered"
            )
        if order.address.lower() != p.eth_address.lower() or not verify_order(order, cfg.chain_id):
            return Verdict(False, RejectCode.BAD_SIGNATURE, f"not signed by {p.eth_address} over these terms")
        if not p.active:
            return Verdict(False, RejectCode.INACTIVE_PARTICIPANT, f"participant status is {p.status.value}")
        if (
            order.slot_minutes != cfg.slot_minutes
            or not cfg.is_slot_start(order.slot_start)
            or order.session_id != cfg.session_id(order.slot_start)
        ):
            return Verdict(
                False, RejectCode.UNKNOWN_SESSION, f"no session {order.session_id} in {cfg.market_id}"
            )
        if order.quantity_wh <= 0:
            return Verdict(False, RejectCode.NON_POSITIVE_QUANTITY, f"quantity_wh {order.quantity_wh} <= 0")
        if not cfg.price_in_bounds(order.limit_price_micro_per_kwh):
            return Verdict(
                False,
                RejectCode.PRICE_OUT_OF_BOUNDS,
                f"limit {order.limit_price_micro_per_kwh} outside "
                f"[{cfg.price_floor_micro_per_kwh}, {cfg.price_cap_micro_per_kwh}] micro/kWh",
            )
        return ACCEPTED

    def admit(self, order: MarketOrder, session_closed: bool, nonce_owner: str | None) -> Verdict:
        """Checks 7-8 of an order that passed :meth:`check_terms`. ``session_closed``: the session's clock passed
        its gate (or it was cleared); ``nonce_owner``: the order id that already used (address, nonce) in the
        session, if any. The same order again is a ``duplicate`` (at-least-once redelivery)."""
        gate = self.config.gate_closure(order.slot_start)
        if order.client_ts >= gate or session_closed:
            return Verdict(False, RejectCode.GATE_CLOSED, f"gate of {order.session_id} closed at {gate}")
        if nonce_owner == order.order_id:
            return Verdict(True, duplicate=True)
        if nonce_owner is not None:
            return Verdict(
                False, RejectCode.REPLAYED_NONCE, f"nonce {order.nonce} already used by {nonce_owner}"
            )
        return ACCEPTED


def bounds_verdict(errors: list[FieldError]) -> Verdict:
    """The Rejection verdict of an order outside its contract bounds (:mod:`streams.validation.market`)."""
    first = errors[0]
    if first.code in ("ts_in_future", "ts_too_old"):
        code = RejectCode.EVENT_TIME_OUT_OF_BOUNDS
    elif first.code == "beyond_horizon":
        code = RejectCode.BEYOND_HORIZON
    elif first.field == "quantity_wh" and first.code == "value_out_of_range":
        code = RejectCode.QUANTITY_TOO_LARGE
    else:
        code = RejectCode.INVALID_FIELD
    return Verdict(False, code, describe(errors))
