"""DR contract-terms registration on the chain: wanted versions in, ``TermsReceipt`` records out.

:class:`TermsRegistrar` brings the chain to the wanted versions (:mod:`streams.anchoring.terms`): it waits until
the signing account has no unmined transaction, reads each contract's latest version, sends ``register`` only
where :func:`~streams.anchoring.terms.needs_registration` says so, waits for the receipts and N confirmations,
re-reads the chain and returns one ``TermsReceipt`` per enrolment (also for versions already on-chain, so a run
that crashed before publishing publishes the same receipt, same ``event_id``, on replay). Contract refusals of
one record are returned with the reason; an unauthorised key (``NotWriter``) raises :class:`TermsRejected`.
The ``terms`` stage (:mod:`streams.anchoring.terms_processor`) drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from web3.exceptions import ContractLogicError

from streams.anchoring.artifacts import revert_reason
from streams.anchoring.terms import (
    OnChainTerms,
    TermsVersion,
    needs_registration,
    terms_receipt,
)
from streams.anchoring.terms_chain import CONTRACT_NAME, TermsRegistryClient

log = logging.getLogger(__name__)

#: refusals that no other record could pass either: configuration problems, not bad records
FATAL_REFUSALS = frozenset({"NotWriter"})


class TermsRejected(RuntimeError):
    """The contract refuses every registration of this key (e.g. ``NotWriter``): retrying cannot help."""


@dataclass(frozen=True)
class TermsConfig:
    """Confirmations N (the mining block counts as 1); timeouts in seconds."""

    confirmations: int = 2
    receipt_timeout_s: float = 120.0
    confirm_timeout_s: float = 600.0
    pending_timeout_s: float = 120.0


@dataclass
class Outcome:
    """What :meth:`TermsRegistrar.register_all` did: receipts (new or already on-chain), refused records
    (with the contract's reason) and how many transactions it sent."""

    receipts: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[TermsVersion, str]] = field(default_factory=list)
    sent: int = 0


class TermsRegistrar:
    """Registers wanted versions through one :class:`TermsRegistryClient` (one attempt per call)."""

    def __init__(self, client: TermsRegistryClient, config: TermsConfig | None = None):
        self.client = client
        self.config = config or TermsConfig()
        self.sent_txs: list[str] = []

    def register_all(self, wanted: Sequence[TermsVersion]) -> Outcome:
        """Bring each contract in ``wanted`` (at most one entry per contract) to its wanted version.

        Raises on chain errors (nothing is lost: the caller retries the same list) and :class:`TermsRejected`
        on a refusal no record can pass."""
        c, cfg, out = self.client, self.config, Outcome()
        c.wait_no_pending(cfg.pending_timeout_s)
        sent: list[tuple[TermsVersion, str]] = []
        existing: list[tuple[TermsVersion, OnChainTerms]] = []
        for v in wanted:
            latest = c.latest(v.contract_id)
            if not needs_registration(v, latest):
                assert latest is not None
                existing.append((v, latest))
                continue
            try:
                tx_hash = c.send_register(v)
            except Exception as exc:  # gas estimation runs the call: a revert surfaces here
                reason = revert_reason(exc, CONTRACT_NAME)
                if reason in FATAL_REFUSALS:
                    raise TermsRejected(f"contract refused registration: {reason}") from exc
                if reason is not None or isinstance(exc, ContractLogicError):
                    out.refused.append((v, f"contract refused registration: {reason or exc}"))
                    continue
                raise  # transport problem: retried by the caller
            self.sent_txs.append(tx_hash)
            out.sent += 1
            sent.append((v, tx_hash))
        done: list[tuple[TermsVersion, OnChainTerms, str]] = []
        for v, tx_hash in sent:
            receipt = c.wait_receipt(tx_hash, cfg.receipt_timeout_s)
            version = c.registered_version(receipt) if receipt["status"] == 1 else None
            if version is None:
                raise RuntimeError(f"{v.contract_ref}: register transaction {tx_hash} reverted")
            done.append((v, c.get_terms(v.contract_id, version), tx_hash))
        for v, on_chain in existing:
            tx = c.find_register_tx(v.contract_id, on_chain.version, on_chain.block_number)
            if tx is None:
                raise RuntimeError(f"{v.contract_ref} v{on_chain.version}: no TermsRegistered event found")
            done.append((v, on_chain, tx.tx_hash))
        if not done:
            return out
        c.wait_confirmations(
            max(t.block_number for _, t, _ in done), cfg.confirmations, cfg.confirm_timeout_s
        )
        chain_id, head = c.chain_id, c.w3.eth.block_number
        for v, on_chain, tx_hash in done:
            again = c.get_terms(
                v.contract_id, on_chain.version
            )  # re-read after confirmations: survives a reorg
            if again.terms_hash != v.terms_hash:
                raise RuntimeError(
                    f"{v.contract_ref} v{on_chain.version} changed after confirmation (reorg?)"
                )
            out.receipts.append(
                terms_receipt(
                    v,
                    again,
                    chain_id=chain_id,
                    contract_address=c.address,
                    tx_hash=tx_hash,
                    confirmations=head - again.block_number + 1,
                    registered_at=c.block_timestamp_ms(again.block_number),
                )
            )
        return out
