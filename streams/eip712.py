"""EIP-712 typed-data signing shared by every signed contract (market orders, DSO flex requests).

A contract's canonical encoding is an EIP-712 typed message: a domain (``name``, ``version`` and, where a chain is
involved, ``chainId``), the struct types and the message. The digest (keccak256 of
``0x19 0x01 domainSeparator structHash``) commits to every typed field; the signature is a 65-byte secp256k1
signature (0x-hex) that recovers to the signer's Ethereum address. Keys never leave the signer: only the address
is registered on the platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import is_address, keccak, to_checksum_address

Types = Mapping[str, Sequence[Mapping[str, str]]]


@dataclass(frozen=True)
class Domain:
    """EIP-712 domain. ``chain_id`` is None for off-chain contracts (the field is then left out)."""

    name: str
    version: str
    chain_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.chain_id is not None:
            out["chainId"] = self.chain_id
        return out


def typed_message(domain: Domain, types: Types, message: Mapping[str, Any]) -> SignableMessage:
    """The signable message (raises ValueError on values that do not fit their types, e.g. a bad address)."""
    return encode_typed_data(domain.as_dict(), {k: list(v) for k, v in types.items()}, dict(message))


def digest_hex(message: SignableMessage) -> str:
    """0x-hex EIP-712 digest of a signable message."""
    return "0x" + keccak(b"\x19" + message.version + message.header + message.body).hex()


def sign(message: SignableMessage, private_key: str | bytes) -> str:
    """0x-hex signature of ``message`` by ``private_key``."""
    sig = Account.sign_message(message, private_key).signature.hex()
    return sig if sig.startswith("0x") else "0x" + sig


def recover(message: SignableMessage, signature: str | None) -> str | None:
    """Checksummed address that signed ``message``, or None when the signature is missing or malformed."""
    if not signature:
        return None
    try:
        return Account.recover_message(message, signature=signature)
    except Exception:  # eth-account raises several types on malformed input
        return None


def checksum_address(value: str) -> str:
    """EIP-55 form of an Ethereum address; ValueError when it is not one (or has a bad mixed-case checksum)."""
    if not isinstance(value, str) or not is_address(value):
        raise ValueError(f"not an Ethereum address (or bad EIP-55 checksum): {value!r}")
    return to_checksum_address(value)
