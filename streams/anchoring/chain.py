"""Thin web3 access to the ``AnchorRegistry`` contract: read anchors, send one anchor transaction, wait.

Every transaction is signed locally with a :class:`~eth_account.signers.local.LocalAccount` (see
:mod:`.keys`), so the same code talks to anvil, a PoA test net or a public chain over plain JSON-RPC.
Bytes32 values are passed as ``bytes``; window bounds are UTC epoch ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from streams.anchoring.artifacts import load_artifact

ZERO32 = b"\x00" * 32
_SEND_LOCKS: dict[str, threading.Lock] = {}
_SEND_LOCKS_GUARD = threading.Lock()


def send_lock(address: str) -> threading.Lock:
    """One lock per signing address in this process: the anchoring and terms threads share the key, and each
    send reads the ``pending`` nonce, so nonce lookup + send must not interleave."""
    with _SEND_LOCKS_GUARD:
        return _SEND_LOCKS.setdefault(address.lower(), threading.Lock())


@dataclass(frozen=True)
class OnChainAnchor:
    """What ``AnchorRegistry.getAnchor`` stores for one (kind, window)."""

    root: bytes
    count: int
    window_start: int
    window_end: int
    block_number: int
    anchorer: str


@dataclass(frozen=True)
class AnchorTx:
    """Where an ``Anchored`` event was emitted."""

    tx_hash: str
    block_number: int
    gas_used: int


class ChainTimeout(TimeoutError):
    """A receipt or the wanted confirmations did not arrive in time."""


def deploy(w3: Web3, account: LocalAccount, name: str, gas_price_wei: int | None = None) -> tuple[str, int]:
    """Deploy contract ``name`` from its artifact; returns (address, block number)."""
    art = load_artifact(name)
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    tx = factory.constructor().build_transaction(_tx_params(w3, account, gas_price_wei))
    receipt = _send_and_wait(w3, account, tx, timeout_s=120.0)
    if receipt["status"] != 1:
        raise RuntimeError(f"deploying {name} failed: {receipt}")
    return receipt["contractAddress"], receipt["blockNumber"]


def _tx_params(w3: Web3, account: LocalAccount, gas_price_wei: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
    }
    if gas_price_wei is not None:
        params["gasPrice"] = gas_price_wei
    return params


def _send_and_wait(w3: Web3, account: LocalAccount, tx: dict[str, Any], timeout_s: float) -> Any:
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.05)


class ContractClient:
    """One deployed contract (``contract_name``'s committed artifact ABI) seen through ``w3``; ``account`` signs
    writes (None: read-only). Shared by the AnchorRegistry and ContractTermsRegistry clients: signing with the
    per-address send lock, receipts, confirmations, block times (UTC epoch ms)."""

    contract_name: str = ""

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount | None = None,
        gas_price_wei: int | None = None,
        poll_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(self.contract_name)["abi"])
        self.account = account
        self.gas_price_wei = gas_price_wei
        self.poll_s = poll_s
        self._sleep = sleep

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def send(self, fn: Any) -> str:
        """Sign and send the contract call ``fn``; returns the tx hash (0x-hex) without waiting for it to be
        mined. Nonce read + send happen under the account's lock (anchoring and terms threads share a key)."""
        if self.account is None:
            raise RuntimeError("read-only client: no signing account configured")
        with send_lock(self.account.address):
            tx = fn.build_transaction(_tx_params(self.w3, self.account, self.gas_price_wei))
            tx_hash = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        return "0x" + bytes(tx_hash).hex()

    def wait_receipt(self, tx_hash: str, timeout_s: float) -> Any:
        """Poll for the receipt; raises :class:`ChainTimeout` after ``timeout_s``."""
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=timeout_s, poll_latency=self.poll_s
            )
        except Exception as exc:
            if type(exc).__name__ == "TimeExhausted":
                raise ChainTimeout(f"no receipt for {tx_hash} in {timeout_s}s") from exc
            raise

    def wait_confirmations(self, block_number: int, confirmations: int, timeout_s: float) -> int:
        """Wait until ``block_number`` has ``confirmations`` (the block itself counts as 1); returns the count."""
        deadline = time.monotonic() + timeout_s
        while True:
            have = self.w3.eth.block_number - block_number + 1
            if have >= confirmations:
                return have
            if time.monotonic() > deadline:
                raise ChainTimeout(f"block {block_number} has {have}/{confirmations} confirmations")
            self._sleep(self.poll_s)

    def block_timestamp_ms(self, block_number: int) -> int:
        """Timestamp of a block, UTC epoch ms (the event time of an anchor or a registration)."""
        return int(self.w3.eth.get_block(block_number)["timestamp"]) * 1000


class AnchorRegistryClient(ContractClient):
    """One deployed ``AnchorRegistry`` seen through ``w3``; ``account`` signs writes (may be None: read-only)."""

    contract_name = "AnchorRegistry"

    def key_of(self, kind: str, window_id: str) -> bytes:
        return self.contract.functions.keyOf(kind, window_id).call()

    def get_anchor(self, kind: str, window_id: str) -> OnChainAnchor | None:
        """The stored anchor, or None if the window has no root yet (read at the latest block)."""
        root, count, start, end, block, anchorer = self.contract.functions.getAnchor(kind, window_id).call()
        if root == ZERO32:
            return None
        return OnChainAnchor(root, count, start, end, block, anchorer)

    def find_anchor_tx(self, kind: str, window_id: str, block_number: int) -> AnchorTx | None:
        """The transaction that anchored (kind, window), looked up by its ``Anchored`` event in ``block_number``."""
        logs = self.contract.events.Anchored().get_logs(
            from_block=block_number,
            to_block=block_number,
            argument_filters={"key": self.key_of(kind, window_id)},
        )
        if not logs:
            return None
        tx_hash = logs[0]["transactionHash"]
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        return AnchorTx("0x" + bytes(tx_hash).hex(), logs[0]["blockNumber"], receipt["gasUsed"])

    def send_anchor(
        self, kind: str, window_id: str, root: bytes, count: int, window_start: int, window_end: int
    ) -> str:
        """Sign and send ``anchor(...)``; returns the tx hash (0x-hex) without waiting for it to be mined."""
        return self.send(
            self.contract.functions.anchor(kind, window_id, root, count, window_start, window_end)
        )
