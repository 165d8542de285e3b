"""UFTP signing keys: Ed25519 key pairs in the base64 forms ``shapeshifter-uftp`` takes (the 64-byte secret key,
seed + public key, signs; the 32-byte public key verifies and is what a participant registers)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nacl.signing import SigningKey


@dataclass(frozen=True)
class UftpKeyPair:
    secret: str  # base64, 64 bytes: keep it secret
    public: str  # base64, 32 bytes: register it with the other side

    @classmethod
    def generate(cls, seed: bytes | None = None) -> UftpKeyPair:
        """A new key pair; from ``seed`` (32 bytes) a deterministic one (tests and simulators only)."""
        key = SigningKey(seed) if seed is not None else SigningKey.generate()
        secret = bytes(key) + bytes(key.verify_key)
        return cls(base64.b64encode(secret).decode(), base64.b64encode(bytes(key.verify_key)).decode())
