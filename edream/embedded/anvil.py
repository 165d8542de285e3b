"""Embedded Ethereum node: anvil (npm ``@foundry-rs/anvil``) with a state file, plus one-time deployment.

* :class:`EmbeddedAnvil` runs the native anvil binary of ``node_modules/@foundry-rs/anvil-<platform>`` (not the
  node wrapper, which would leave the real node behind when it is killed) on a free local port. ``--state``
  loads ``<data dir>/anvil/state.json`` at start and dumps it on exit and every ``state_interval_s`` seconds
  (default 1 s, shorter than the anchorer's 2 confirmations at 1-s blocks, so a ``kill -9`` loses no block an
  anchor was confirmed in). The dump is a plain rewrite of the file, so a kill in the middle of one can leave it
  truncated: each start keeps the last state that parses as ``state.json.good`` and falls back to it.
  ``block_time_s`` adds interval mining on top of instant mining (``--mixed-mining``), which lets
  N-confirmation waits finish on an otherwise idle chain.
* One writer per state file: the anvil holds an exclusive ``flock`` on ``<data dir>/anvil/state.lock`` (the
  descriptor is inherited, so the lock lives exactly as long as the anvil process); a second start on the same
  data dir fails with :class:`StateFileLocked` naming the holder.
* :func:`ensure_deployed` deploys the contracts once per chain and records their addresses in
  ``<data dir>/chain/contracts-<chain id>.json``; later calls reuse them as long as the code is still there.

Production sets ``ETH_RPC_URL`` and never starts anvil.
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import shutil
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from edream.embedded.process import ChildProcess, free_port, start_on_fresh_ports
from edream.paths import NODE_BIN, REPO_ROOT

log = logging.getLogger(__name__)
DEFAULT_CHAIN_ID = 31337


class StateFileLocked(RuntimeError):
    """Another anvil already writes this state file."""


def anvil_binary() -> str:
    """The native anvil executable npm installed for this platform, else the node wrapper."""
    native = sorted(glob.glob(str(REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-*" / "bin" / "anvil")))
    return next((p for p in native if os.access(p, os.X_OK)), str(NODE_BIN / "anvil"))


class StateLock:
    """An exclusive ``flock`` on ``path``; the file says who holds it (for the error of the next one)."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> StateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise StateFileLocked(
                f"{self.path.parent / 'state.json'} is in use by another anvil ({holder}); "
                "stop that platform or set EDREAM_DATA_DIR"
            ) from None
        self.fd = fd
        self.describe(f"edream pid {os.getpid()}")
        return self

    def describe(self, holder: str) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, holder.encode() + b"\n", 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the lock goes when the last holder of the descriptor (the anvil) is gone too
            self.fd = None


def keep_good_state(state_file: Path) -> None:
    """Before anvil loads ``state_file``: remember it if it parses, restore the last good copy if it does not."""
    good = state_file.with_name(state_file.name + ".good")
    if state_file.is_file():
        try:
            json.loads(state_file.read_text())
            shutil.copyfile(state_file, good)
            return
        except ValueError:
            log.warning("%s is damaged (killed while dumping?)", state_file)
    if good.is_file():
        log.warning("anvil: restoring the last good chain state %s", good)
        shutil.copyfile(good, state_file)
    elif state_file.is_file():
        state_file.rename(state_file.with_name(state_file.name + ".damaged"))


class EmbeddedAnvil:
    """One anvil process. ``start()`` returns once the JSON-RPC port answers; ``stop()`` dumps the state."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        block_time_s: float | None = 1.0,
        chain_id: int = DEFAULT_CHAIN_ID,
        state_interval_s: int = 1,
        persist: bool = True,
    ):
        self.data_dir = Path(data_dir) / "anvil"
        self.host = host
        self.port = port or free_port(host)
        self.persist = persist
        self.lock = StateLock(self.data_dir / "state.lock")
        argv = [
            anvil_binary(),
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
        self.process = ChildProcess(
            "anvil", argv, host, self.port, self.data_dir / "anvil.log", state_dir=Path(data_dir) / "run"
        )

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
        """Start anvil and record its RPC URL in ``<data dir>/anvil/endpoint.json`` for other processes.

        Raises :class:`StateFileLocked` if another anvil holds this data dir's state file."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.persist:
            if self.lock.fd is None:  # a restart by the same owner keeps the lock it holds
                self.lock.acquire()
            keep_good_state(self.state_file)
            self.process.pass_fds = (self.lock.fd,)
        try:
            self.process.start(ready_timeout)
        except Exception:
            self.lock.release()
            raise
        if self.process.proc:
            self.lock.describe(f"edream pid {os.getpid()}, anvil pid {self.process.proc.pid}")
        self.endpoint_file.write_text(json.dumps({"rpc_url": self.rpc_url}) + "\n")
        return self

    def stop(self) -> None:
        self.process.stop()
        self.lock.release()
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

    node = start_on_fresh_ports(
        lambda: EmbeddedAnvil(data_dir, block_time_s=block_time_s), EmbeddedAnvil.start
    )
    try:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        return node, ensure_deployed(w3, load_account(embedded_chain=True, env={}), data_dir)
    except Exception:
        node.stop()
        raise
