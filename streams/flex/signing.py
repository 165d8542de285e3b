"""EIP-712 signing of DSO flexibility requests (the canonical encoding of :mod:`streams.eip712`, as for market
orders).

Domain ``{name: "edream-flex", version: "1"}`` (no chain: requests are not settled on-chain); primary type
``FlexRequest`` with every field of :class:`~streams.flex.requests.FlexRequest` except the derived ``event_id`` and
the signature itself; times are UTC epoch ms (``uint64``), the reward currency micro-units per kWh. A slot's kW is
signed as the shortest decimal string that round-trips the IEEE-754 double (Python ``repr``, e.g. ``"12.5"``), so
the signature commits to the exact value the desk uses. The signature must recover to the Ethereum address
registered for ``dso_id`` on ``flex.dsos.v1`` (:mod:`streams.flex.dsos`).
"""

from __future__ import annotations

from dataclasses import replace

from eth_account.messages import SignableMessage

from streams import eip712
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
    if not req.signature:
        return None
    try:
        message = typed_message(req)
    except Exception:  # values outside their EIP-712 types cannot have been signed
        return None
    return eip712.recover(message, req.signature)
