"""The anchoring account's signing key: from the environment or a keystore file, never from the repository.

Order: ``ETH_PRIVATE_KEY`` (0x-hex); else ``ETH_KEYSTORE_FILE`` (a standard encrypted JSON keystore) with its
password in ``ETH_KEYSTORE_PASSWORD`` or in the file named by ``ETH_KEYSTORE_PASSWORD_FILE``; else, only for
the embedded anvil chain, anvil's *well-known* dev account #0 (derived from the public "test test ... junk"
mnemonic, funded with 10 000 ETH at genesis; its key is published in the Foundry docs and worthless
elsewhere).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

ANVIL_DEV_ACCOUNT_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


class KeyNotConfigured(RuntimeError):
    """No signing key configured for a non-embedded chain."""


def load_account(embedded_chain: bool, env: Mapping[str, str] | None = None) -> LocalAccount:
    """The signing account (see module docstring for the lookup order)."""
    env = os.environ if env is None else env
    if env.get("ETH_PRIVATE_KEY"):
        return Account.from_key(env["ETH_PRIVATE_KEY"])
    if env.get("ETH_KEYSTORE_FILE"):
        password = env.get("ETH_KEYSTORE_PASSWORD")
        if password is None and env.get("ETH_KEYSTORE_PASSWORD_FILE"):
            password = Path(env["ETH_KEYSTORE_PASSWORD_FILE"]).read_text().rstrip("\n")
        if password is None:
            raise KeyNotConfigured(
                "ETH_KEYSTORE_FILE needs ETH_KEYSTORE_PASSWORD or ETH_KEYSTORE_PASSWORD_FILE"
            )
        keystore = json.loads(Path(env["ETH_KEYSTORE_FILE"]).read_text())
        return Account.from_key(Account.decrypt(keystore, password))
    if embedded_chain:
        return Account.from_key(ANVIL_DEV_ACCOUNT_0_KEY)
    raise KeyNotConfigured(
        "set ETH_PRIVATE_KEY or ETH_KEYSTORE_FILE to anchor on an external chain (ETH_RPC_URL)"
    )
