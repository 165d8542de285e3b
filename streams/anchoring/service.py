"""Assembly of the anchoring pieces for one deployment: connect to the chain, anchor, verify.

Used by the CLI, the anchoring stage and the integration tests, so all three run the same code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from edream.embedded.anvil import deployments_file, ensure_deployed, running_rpc_url
from edream.settings import Settings
from streams.anchoring.anchorer import Anchorer
from streams.anchoring.chain import AnchorRegistryClient
from streams.anchoring.keys import load_account
from streams.anchoring.merkle import leaf_hash
from streams.anchoring.store import AnchorStore
from streams.anchoring.terms_chain import TermsRegistryClient
from streams.anchoring.verify import RecordReport, WindowReport, verify_record, verify_window
from streams.anchoring.windows import WindowBatch, WindowKey


class ChainNotConfigured(RuntimeError):
    """No ETH_RPC_URL and no embedded anvil running, or no AnchorRegistry address known."""


def connect(settings: Settings, sign: bool = True, deploy_if_missing: bool = False) -> AnchorRegistryClient:
    """Client for the AnchorRegistry of this deployment.

    RPC: ``ETH_RPC_URL`` or the running embedded anvil. Address: ``ANCHOR_REGISTRY_ADDRESS`` or the one recorded
    by :func:`ensure_deployed` in the data dir (deployed now if ``deploy_if_missing``). ``sign`` loads the key.
    """
    w3, account, address = _resolve(
        settings, "AnchorRegistry", "ANCHOR_REGISTRY_ADDRESS", sign, deploy_if_missing
    )
    return AnchorRegistryClient(w3, address, account if sign else None)


def connect_terms(
    settings: Settings, sign: bool = True, deploy_if_missing: bool = False
) -> TermsRegistryClient:
    """Client for the ContractTermsRegistry of this deployment: as :func:`connect`, address from
    ``TERMS_REGISTRY_ADDRESS`` or the data dir's deployment record."""
    w3, account, address = _resolve(
        settings, "ContractTermsRegistry", "TERMS_REGISTRY_ADDRESS", sign, deploy_if_missing
    )
    return TermsRegistryClient(w3, address, account if sign else None)


def _resolve(
    settings: Settings, name: str, address_env: str, sign: bool, deploy_if_missing: bool
) -> tuple[Web3, LocalAccount | None, str]:
    """(web3, signing account or None, address of contract ``name``) for this deployment."""
    from edream.stack import RunState

    embedded = not settings.eth_rpc_url
    live = RunState.load_live(settings)
    rpc = (
        settings.eth_rpc_url
        or (live.eth_rpc_url if live else None)
        or running_rpc_url(settings.edream_data_dir)
    )
    if not rpc:
        raise ChainNotConfigured("set ETH_RPC_URL or start the platform (embedded anvil) first")
    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    account = load_account(embedded) if sign or deploy_if_missing else None
    address = os.environ.get(address_env)
    if not address:
        if deploy_if_missing:
            assert account is not None
            address = ensure_deployed(w3, account, settings.edream_data_dir)[name]
        else:
            path = deployments_file(settings.edream_data_dir, w3.eth.chain_id)
            known = json.loads(path.read_text()) if path.exists() else {}
            if name not in known:
                raise ChainNotConfigured(f"no {name} deployed on this chain ({path} missing or without it)")
            address = known[name]
    return w3, account, address


@dataclass
class AnchoringService:
    """Anchor windows and record them; verify windows and records against the chain."""

    client: AnchorRegistryClient
    store: AnchorStore
    anchorer: Anchorer | None = None

    def anchor(self, batches: Iterable[WindowBatch]) -> list[dict[str, Any]]:
        """Anchor each window, then store its receipt and manifest (idempotent end to end)."""
        if self.anchorer is None:
            raise RuntimeError("read-only service: no anchorer")
        out = []
        for batch in batches:
            receipt = self.anchorer.anchor_window(batch)
            self.store.record_anchor(receipt, batch.records)
            out.append(receipt)
        return out

    def verify_window(self, kind: str, window_id: str) -> WindowReport:
        key = WindowKey.parse(kind, window_id)
        return verify_window(
            kind,
            window_id,
            self.store.window_records(key),
            self.client.get_anchor(kind, window_id),
            self.store.manifest(kind, window_id),
        )

    def verify_record(self, settlement_id: str) -> RecordReport:
        loc = self.store.manifest_window_of(settlement_id)
        if loc is None:
            record = next(
                (
                    r
                    for k in self.store.settlement_tables
                    if (r := self.store.record(k, settlement_id)) is not None
                ),
                None,
            )
            return verify_record(settlement_id, record, None, None, None, None)
        kind, window_id = loc
        record = self.store.record(kind, settlement_id)
        rep = verify_record(
            settlement_id,
            record,
            kind,
            window_id,
            self.store.manifest(kind, window_id),
            self.client.get_anchor(kind, window_id),
        )
        if rep.valid and record is not None:  # second opinion from the contract itself
            proof = [bytes.fromhex(p[2:]) for p in rep.proof]
            on_chain_ok = self.client.contract.functions.verifyLeaf(
                kind, window_id, leaf_hash(record), proof
            ).call()
            if not on_chain_ok:
                rep.valid = False
                rep.problems.append("AnchorRegistry.verifyLeaf rejected the proof")
        return rep
