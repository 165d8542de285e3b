"""Embedded Ethereum node: anvil (npm ``@foundry-rs/anvil``) with a state file, plus one-time deployment.

* :class:`EmbeddedAnvil` runs ``node_modules/.bin/anvil`` on a free local port. ``--state`` loads
  ``<data dir>/anvil/state.json`` at start and dumps it on exit (and every ``state_interval_s`` seconds), so
  anchors survive restarts. ``block_time_s`` adds interval mining on top of instant mining
  (``--mixed-mining``), which lets N-confirmation waits finish on an otherwise idle chain.
* :func:`ensure_deployed` deploys the contracts once per chain and records their addresses in
  ``<data dir>/chain/contracts-<chain id>.json``; later calls reuse them as long as the code is still there.

Production sets ``ETH_RPC_URL`` and never starts anvil.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from edream.embedded.process import ChildProcess, free_port
from edream.paths import NODE_BIN

DEFAULT_CHAIN_ID = 31337


class EmbeddedAnvil:
    """One anvil process. ``start()`` returns once the JSON-RPC port answers; ``stop()`` dumps the state."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        block_time_s: float | None = 1.0,
        chain_id: int = DEFAULT_CHAIN_ID,
        state_interval_s: int = 2,
        persist: bool = True,
    ):
        self.data_dir = Path(data_dir) / "anvil"
        self.host = host
        self.port = port or free_port(host)
        argv = [
            str(NODE_BIN / "anvil"),
            "--host",
            host,
            "--port",
            str(self.port),
            "--chain-id",
            str(chain_id),
            "--silent",
        ]
        if persist:
            argv += ["--state", str(self.state_file), "--state-interval", str(state_interval_s)]
        if block_time_s:
            argv += ["--block-time", str(block_time_s), "--mixed-mining"]
        self.process = ChildProcess("anvil", argv, host, self.port, self.data_dir / "anvil.log")

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint_file(self) -> Path:
        return endpoint_file(self.data_dir.parent)

    def start(self, ready_timeout: float = 30.0) -> EmbeddedAnvil:
        """Start anvil and record its RPC URL in ``<data dir>/anvil/endpoint.json`` for other processes."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start(ready_timeout)
        self.endpoint_file.write_text(json.dumps({"rpc_url": self.rpc_url}) + "\n")
        return self

    def stop(self) -> None:
        self.process.stop()
        self.endpoint_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedAnvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def endpoint_file(data_dir: Path) -> Path:
    return Path(data_dir) / "anvil" / "endpoint.json"


def running_rpc_url(data_dir: Path) -> str | None:
    """RPC URL of the embedded anvil started for ``data_dir``, if one is running."""
    path = endpoint_file(data_dir)
    return json.loads(path.read_text())["rpc_url"] if path.exists() else None


def deployments_file(data_dir: Path, chain_id: int) -> Path:
    return Path(data_dir) / "chain" / f"contracts-{chain_id}.json"


def ensure_deployed(
    w3: Web3,
    account: LocalAccount,
    data_dir: Path,
    names: tuple[str, ...] = ("AnchorRegistry", "ContractTermsRegistry"),
) -> dict[str, str]:
    """Addresses of ``names`` on ``w3``'s chain, deploying the ones missing (recorded in the data dir)."""
    from streams.anchoring.chain import deploy  # the contracts belong to the anchoring package

    path = deployments_file(data_dir, w3.eth.chain_id)
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for name in names:
        addr = known.get(name)
        if addr and w3.eth.get_code(Web3.to_checksum_address(addr)):
            continue
        known[name], _ = deploy(w3, account, name)
        changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    return {n: known[n] for n in names}


def start_embedded_chain(
    data_dir: Path, block_time_s: float | None = 1.0
) -> tuple[EmbeddedAnvil, dict[str, str]]:
    """For ``edream run`` without ``ETH_RPC_URL``: start anvil on the data dir's state and make sure the
    contracts are deployed (signed by anvil's well-known dev account #0). Returns (node, addresses)."""
    from streams.anchoring.keys import load_account

    node = EmbeddedAnvil(data_dir, block_time_s=block_time_s).start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        return node, ensure_deployed(w3, load_account(embedded_chain=True, env={}), data_dir)
    except Exception:
        node.stop()
        raise
