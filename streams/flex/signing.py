"""EIP-712 signing of the DSO's flexibility messages, requests and acceptances of offers (the canonical encoding of
:mod:`streams.eip712`, as for market orders).

Domain ``{name: "edream-flex", version: "1"}`` (no chain: requests are not settled on-chain); primary type
``FlexRequest`` with every field of :class:`~streams.flex.requests.FlexRequest` except the derived ``event_id`` and
the signature itself; times are UTC epoch ms (``uint64``), the reward currency micro-units per kWh. A slot's kW is
signed as the shortest decimal string that round-trips the IEEE-754 double (Python ``repr``, e.g. ``"12.5"``), so
the signature commits to the exact value the desk uses. The signature must recover to the Ethereum address
registered for ``dso_id`` on ``flex.dsos.v1`` (:mod:`streams.flex.dsos`).

An acceptance (:class:`~streams.flex.acceptance.FlexAcceptance`, primary type ``FlexAcceptance``) is signed the same
way, in the same domain, over every field but ``event_id`` and the signature.
"""

from __future__ import annotations

from dataclasses import replace

from eth_account.messages import SignableMessage

from streams import eip712
from streams.flex.acceptance import FlexAcceptance
from streams.flex.requests import FlexRequest

DOMAIN = eip712.Domain("edream-flex", "1")
TYPES = {
    "FlexRequest": [
        {"name": "requestId", "type": "string"},
        {"name": "dsoId", "type": "string"},
        {"name": "areaId", "type": "string"},
        {"name": "direction", "type": "string"},
        {"name": "slotMinutes", "type": "uint32"},
        {"name": "slots", "type": "RequestSlot[]"},
        {"name": "rewardMicroPerKwh", "type": "int256"},
        {"name": "currency", "type": "string"},
        {"name": "deadline", "type": "uint64"},
        {"name": "createdAt", "type": "uint64"},
    ],
    "RequestSlot": [
        {"name": "slotStart", "type": "uint64"},
        {"name": "kw", "type": "string"},
    ],
}


def typed_message(req: FlexRequest) -> SignableMessage:
    """The EIP-712 message of the request (ValueError when a value does not fit its type, e.g. a negative time)."""
    message = {
        "requestId": req.request_id,
        "dsoId": req.dso_id,
        "areaId": req.area_id,
        "direction": str(req.direction),
        "slotMinutes": req.slot_minutes,
        "slots": [{"slotStart": s.slot_start, "kw": repr(float(s.kw))} for s in req.slots],
        "rewardMicroPerKwh": req.reward_micro_per_kwh,
        "currency": req.currency,
        "deadline": req.deadline,
        "createdAt": req.created_at,
    }
    return eip712.typed_message(DOMAIN, TYPES, message)


def sign_request(req: FlexRequest, private_key: str | bytes) -> FlexRequest:
    """The request with its ``signature`` by ``private_key`` (the DSO's key)."""
    return replace(req, signature=eip712.sign(typed_message(req), private_key))


def request_signer(req: FlexRequest) -> str | None:
    """Checksummed address that signed the request, or None when unsigned, malformed or not signable."""
    return signer_of(req)


ACCEPTANCE_TYPES = {
    "FlexAcceptance": [
        {"name": "acceptanceId", "type": "string"},
        {"name": "offerId", "type": "string"},
        {"name": "dsoId", "type": "string"},
        {"name": "areaId", "type": "string"},
        {"name": "decision", "type": "string"},
        {"name": "slots", "type": "AcceptedSlot[]"},
        {"name": "priceMicro", "type": "int256"},
        {"name": "currency", "type": "string"},
        {"name": "validUntil", "type": "uint64"},
        {"name": "createdAt", "type": "uint64"},
    ],
    "AcceptedSlot": [
        {"name": "slotStart", "type": "uint64"},
        {"name": "kw", "type": "string"},
    ],
}


def acceptance_message(acc: FlexAcceptance) -> SignableMessage:
    """The EIP-712 message of an acceptance (ValueError when a value does not fit its type)."""
    message = {
        "acceptanceId": acc.acceptance_id,
        "offerId": acc.offer_id,
        "dsoId": acc.dso_id,
        "areaId": acc.area_id,
        "decision": acc.decision,
        "slots": [{"slotStart": s.slot_start, "kw": repr(float(s.kw))} for s in acc.slots],
        "priceMicro": acc.price_micro,
        "currency": acc.currency,
        "validUntil": acc.valid_until,
        "createdAt": acc.created_at,
    }
    return eip712.typed_message(DOMAIN, ACCEPTANCE_TYPES, message)


def sign_acceptance(acc: FlexAcceptance, private_key: str | bytes) -> FlexAcceptance:
    """The acceptance with its ``signature`` by ``private_key`` (the DSO's key)."""
    return replace(acc, signature=eip712.sign(acceptance_message(acc), private_key))


def signer_of(message: FlexRequest | FlexAcceptance) -> str | None:
    """Checksummed address that signed a request or an acceptance; None when unsigned, malformed or not
    signable."""
    if not message.signature:
        return None
    try:
        signable = typed_message(message) if isinstance(message, FlexRequest) else acceptance_message(message)
    except Exception:  # values outside their EIP-712 types cannot have been signed
        return None
    return eip712.recover(signable, message.signature)
