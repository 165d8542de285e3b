"""Thin web3 access to the ``ContractTermsRegistry`` contract: read versions, send ``register``, wait.

Signed locally like :class:`~streams.anchoring.chain.AnchorRegistryClient` (same key, same per-address send
lock). Bytes32 values are ``bytes``; validity bounds and block timestamps are UTC epoch ms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from streams.anchoring.chain import ChainTimeout, ContractClient
from streams.anchoring.terms import OnChainTerms, TermsVersion

CONTRACT_NAME = "ContractTermsRegistry"


@dataclass(frozen=True)
class RegisterTx:
    """Where a ``TermsRegistered`` event of one (contract, version) was emitted."""

    tx_hash: str
    block_number: int
    version: int


class TermsRegistryClient(ContractClient):
    """One deployed ``ContractTermsRegistry`` seen through ``w3``; ``account`` signs writes (None: read-only)."""

    contract_name = CONTRACT_NAME

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
        return self.send(self.contract.functions.register(*v.register_args()))

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
