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
from typing import TypeVar

from eth_account.messages import SignableMessage

from streams import eip712
from streams.flex.acceptance import FlexAcceptance
from streams.flex.requests import FlexRequest

DOMAIN = eip712.Domain("edream-flex", "1")
#: a slot as both messages sign it: its start (UTC epoch ms) and its kW as the shortest round-trip decimal
_SLOT = [{"name": "slotStart", "type": "uint64"}, {"name": "kw", "type": "string"}]
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
    "RequestSlot": _SLOT,
}
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
    "AcceptedSlot": _SLOT,
}

Signed = TypeVar("Signed", FlexRequest, FlexAcceptance)


def _slots(slots) -> list[dict]:
    return [{"slotStart": s.slot_start, "kw": repr(float(s.kw))} for s in slots]


def typed_message(msg: FlexRequest | FlexAcceptance) -> SignableMessage:
    """The EIP-712 message of a request or an acceptance (ValueError when a value does not fit its type, e.g. a
    negative time)."""
    if isinstance(msg, FlexRequest):
        types, fields = (
            TYPES,
            {
                "requestId": msg.request_id,
                "direction": str(msg.direction),
                "slotMinutes": msg.slot_minutes,
                "rewardMicroPerKwh": msg.reward_micro_per_kwh,
                "deadline": msg.deadline,
            },
        )
    else:
        types, fields = (
            ACCEPTANCE_TYPES,
            {
                "acceptanceId": msg.acceptance_id,
                "offerId": msg.offer_id,
                "decision": msg.decision,
                "priceMicro": msg.price_micro,
                "validUntil": msg.valid_until,
            },
        )
    common = {"dsoId": msg.dso_id, "areaId": msg.area_id, "slots": _slots(msg.slots)}
    common |= {"currency": msg.currency, "createdAt": msg.created_at}
    return eip712.typed_message(DOMAIN, types, fields | common)


def sign(msg: Signed, private_key: str | bytes) -> Signed:
    """The request or acceptance with its ``signature`` by ``private_key`` (the DSO's key)."""
    return replace(msg, signature=eip712.sign(typed_message(msg), private_key))


sign_request = sign_acceptance = sign


def signer_of(msg: FlexRequest | FlexAcceptance) -> str | None:
    """Checksummed address that signed a request or an acceptance; None when unsigned, malformed or not
    signable."""
    if not msg.signature:
        return None
    try:
        signable = typed_message(msg)
    except Exception:  # values outside their EIP-712 types cannot have been signed
        return None
    return eip712.recover(signable, msg.signature)


request_signer = signer_of
