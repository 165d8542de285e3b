"""Thin web3 access to the ``ContractTermsRegistry`` contract: read versions, send ``register``, wait.

Signed locally like :class:`~streams.anchoring.chain.AnchorRegistryClient` (same key, same per-address send
lock). Bytes32 values are ``bytes``; validity bounds and block timestamps are UTC epoch ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from streams.anchoring.artifacts import load_artifact
from streams.anchoring.chain import ChainTimeout, _tx_params, send_lock
from streams.anchoring.terms import OnChainTerms, TermsVersion

CONTRACT_NAME = "ContractTermsRegistry"


@dataclass(frozen=True)
class RegisterTx:
    """Where a ``TermsRegistered`` event of one (contract, version) was emitted."""

    tx_hash: str
    block_number: int
    version: int


class TermsRegistryClient:
    """One deployed ``ContractTermsRegistry`` seen through ``w3``; ``account`` signs writes (None: read-only)."""

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
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(CONTRACT_NAME)["abi"])
        self.account = account
        self.gas_price_wei = gas_price_wei
        self.poll_s = poll_s
        self._sleep = sleep

    @property
    def chain_id(self) -> int:
        return self.w3.eth.chain_id

    def latest_version(self, contract_id: bytes) -> int:
        """Number of registered versions of ``contract_id`` (0 = none)."""
        return int(self.contract.functions.latestVersion(contract_id).call())

    def get_terms(self, contract_id: bytes, version: int) -> OnChainTerms:
        """One registered version (1-based; ``version`` must exist)."""
        return OnChainTerms.from_call(version, self.contract.functions.getTerms(contract_id, version).call())

    def latest(self, contract_id: bytes) -> OnChainTerms | None:
        """The latest version, or None if the contract has none (read at the latest block)."""
        n = self.latest_version(contract_id)
        return self.get_terms(contract_id, n) if n else None

    def versions(self, contract_id: bytes) -> list[OnChainTerms]:
        """All registered versions, ascending."""
        return [self.get_terms(contract_id, v) for v in range(1, self.latest_version(contract_id) + 1)]

    def pending_count(self) -> int:
        """Transactions of the signing account sent but not yet mined (pending nonce - latest nonce)."""
        if self.account is None:
            return 0
        eth = self.w3.eth
        return eth.get_transaction_count(self.account.address, "pending") - eth.get_transaction_count(
            self.account.address, "latest"
        )

    def wait_no_pending(self, timeout_s: float) -> None:
        """Wait until the signing account has no unmined transaction, so the chain read next reflects every
        registration already sent (e.g. by a run that crashed before its transaction was mined)."""
        deadline = time.monotonic() + timeout_s
        while (n := self.pending_count()) > 0:
            if time.monotonic() > deadline:
                raise ChainTimeout(f"{n} transactions of {self.account.address} still pending")  # type: ignore[union-attr]
            self._sleep(self.poll_s)

    def send_register(self, v: TermsVersion) -> str:
        """Sign and send ``register(...)`` for ``v``; returns the tx hash (0x-hex) without waiting."""
        if self.account is None:
            raise RuntimeError("read-only client: no signing account configured")
        fn = self.contract.functions.register(*v.register_args())
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

    def registered_version(self, receipt: Any) -> int | None:
        """Version number from the ``TermsRegistered`` event of a mined ``register`` receipt."""
        events = self.contract.events.TermsRegistered().process_receipt(receipt)
        return int(events[0]["args"]["version"]) if events else None

    def find_register_tx(self, contract_id: bytes, version: int, block_number: int) -> RegisterTx | None:
        """The transaction that registered (contract_id, version), from its event in ``block_number``."""
        logs = self.contract.events.TermsRegistered().get_logs(
            from_block=block_number, to_block=block_number, argument_filters={"contractId": contract_id}
        )
        for log in logs:
            if int(log["args"]["version"]) == version:
                return RegisterTx("0x" + bytes(log["transactionHash"]).hex(), log["blockNumber"], version)
        return None

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
        """Timestamp of a block, UTC epoch ms."""
        return int(self.w3.eth.get_block(block_number)["timestamp"]) * 1000
