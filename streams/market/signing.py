"""EIP-712 typed-data signing and verification of market orders (:mod:`streams.eip712`).

Domain: ``{name: "edream-p2p-market", version: "1", chainId}``; primary type ``MarketOrder`` with every field of
:class:`~streams.market.market_order.OrderTerms`. The order id is the EIP-712 digest (0x-hex), so the id commits
to the exact terms; the signature must recover to the order's ``address``.
"""

from __future__ import annotations

from eth_account.messages import SignableMessage

from streams import eip712
from streams.market.market_order import MarketOrder, OrderTerms

DOMAIN_NAME = "edream-p2p-market"
DOMAIN_VERSION = "1"
ORDER_TYPE = [
    {"name": "participantId", "type": "string"},
    {"name": "address", "type": "address"},
    {"name": "sessionId", "type": "string"},
    {"name": "side", "type": "string"},
    {"name": "slotStart", "type": "uint64"},
    {"name": "slotMinutes", "type": "uint32"},
    {"name": "quantityWh", "type": "int256"},
    {"name": "limitPriceMicroPerKwh", "type": "int256"},
    {"name": "energyType", "type": "string"},
    {"name": "clientTs", "type": "uint64"},
    {"name": "nonce", "type": "uint64"},
]


def typed_message(terms: OrderTerms, chain_id: int) -> SignableMessage:
    """The EIP-712 signable message of the terms (raises ValueError on malformed values, e.g. a bad address)."""
    message = {
        "participantId": terms.participant_id,
        "address": terms.address,
        "sessionId": terms.session_id,
        "side": terms.side.value,
        "slotStart": terms.slot_start,
        "slotMinutes": terms.slot_minutes,
        "quantityWh": terms.quantity_wh,
        "limitPriceMicroPerKwh": terms.limit_price_micro_per_kwh,
        "energyType": terms.energy_type.value,
        "clientTs": terms.client_ts,
        "nonce": terms.nonce,
    }
    domain = eip712.Domain(DOMAIN_NAME, DOMAIN_VERSION, chain_id)
    return eip712.typed_message(domain, {"MarketOrder": ORDER_TYPE}, message)


def order_id(terms: OrderTerms, chain_id: int) -> str:
    """0x-hex EIP-712 digest (keccak256 of ``0x19 0x01 domainSeparator structHash``)."""
    return eip712.digest_hex(typed_message(terms, chain_id))


def sign_order(terms: OrderTerms, private_key: str | bytes, chain_id: int) -> MarketOrder:
    """Sign the terms with ``private_key`` (must be the key of ``terms.address``)."""
    message = typed_message(terms, chain_id)
    return MarketOrder(
        **terms.__dict__,
        order_id=eip712.digest_hex(message),
        signature=eip712.sign(message, private_key),
    )


def recover_signer(order: MarketOrder, chain_id: int) -> str | None:
    """Checksummed address that signed the order's terms, or None if the signature/terms are malformed."""
    try:
        message = typed_message(order.terms, chain_id)
    except Exception:  # malformed terms (e.g. a bad address) cannot have been signed
        return None
    return eip712.recover(message, order.signature)


def verify_order(order: MarketOrder, chain_id: int) -> bool:
    """True when the id is the digest of the terms and the signature recovers to ``order.address``."""
    try:
        if order.order_id != order_id(order.terms, chain_id):
            return False
    except Exception:
        return False
    signer = recover_signer(order, chain_id)
    return signer is not None and signer.lower() == order.address.lower()
