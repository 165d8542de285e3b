"""Deterministic demo Ethereum keys: the same seed and participant always give the same key and address.

Demo only: the keys are derivable from public inputs, so they must never hold value.
"""

from __future__ import annotations

from eth_account import Account
from eth_utils import keccak

from connectors.uftp.keys import UftpKeyPair


def demo_key(seed: int, participant_id: str) -> str:
    """0x-hex secp256k1 private key = keccak256("edream-demo/<seed>/<participant_id>")."""
    return "0x" + keccak(text=f"edream-demo/{seed}/{participant_id}").hex()


def demo_address(seed: int, participant_id: str) -> str:
    """EIP-55 checksummed address of :func:`demo_key`."""
    return Account.from_key(demo_key(seed, participant_id)).address


def demo_uftp_keys(seed: int, participant_id: str) -> UftpKeyPair:
    """Ed25519 UFTP key pair from keccak256("edream-demo/<seed>/uftp/<participant_id>") (demo only, like above)."""
    return UftpKeyPair.generate(keccak(text=f"edream-demo/{seed}/uftp/{participant_id}"))
