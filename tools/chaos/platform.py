"""The platform under test: ``edream run --no-demo`` on its own data dir and free web port, as an operator runs it.

Everything embedded (durable Tansu on SeaweedFS, anvil, chDB) lives under the data dir; the environment of the
calling process must not point it elsewhere, so broker/chain/ClickHouse settings are removed from it. The web API
(``/api/status``) tells when it is ready; ``<data>/run.json`` gives the broker address and ``<data>/run/*.json``
its children (object store, broker, anvil, stage processes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from edream.embedded.process import file_tail, free_port

#: settings that would point the platform at components outside its data dir
FOREIGN = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "ETH_RPC_URL",
    "CLICKHOUSE_DSN",
    "SCHEMA_REGISTRY_URL",
    "EDREAM_TOPOLOGY",
    "EDREAM_CONFIG",
    "EDREAM_APP_ID",
    "EDREAM_API_TOKEN",
    "EDREAM_API_TOKEN_FILE",
    "ANCHOR_REGISTRY_ADDRESS",
    "TERMS_REGISTRY_ADDRESS",
)


class NotReady(RuntimeError):
    pass


@dataclass(frozen=True)
class Child:
    name: str  # file stem under <data>/run: tansu-broker, broker-object-store, anvil, stage-<name>
    pid: int


class Platform:
    def __init__(self, data_dir: Path, log_path: Path, env: dict[str, str] | None = None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
        self.env.update(
            EDREAM_DATA_DIR=str(data_dir),
            EDREAM_WEB_PORT=str(self.port),
            EDREAM_REST_PORT=str(free_port()),
            EDREAM_WEB_HOST="127.0.0.1",
            EDREAM_LOG_LEVEL="WARNING",
            **(env or {}),
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edream.cli", "run", "--no-demo"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def status(self, timeout: float = 5.0) -> dict[str, Any] | None:
        try:
            return httpx.get(f"{self.url}/api/status", timeout=timeout).json()
        except (httpx.HTTPError, ValueError):
            return None

    def wait_ready(self, stages: bool = True, timeout: float = 240.0) -> float:
        """Wait until the status API answers, ClickHouse is reachable and (``stages``) every stage reports UP;
        returns the seconds waited. Fails with the last status seen."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise NotReady(f"edream run exited with {self.proc.returncode}; see {self.log_path}")
            last = self.status()
            if last and last.get("clickhouse", {}).get("reachable") and (not stages or self.stages_up(last)):
                return time.monotonic() - t0
            time.sleep(0.5)
        down = self.stages_down(last) if stages else []
        raise NotReady(
            f"platform not ready in {timeout:.0f} s; stages not UP: {down or 'none'}; "
            f"last status: {json.dumps(last)[:2000]}"
        )

    def stages_down(self, status: dict[str, Any] | None) -> list[str]:
        """Stage processes of this platform (``<data>/run/stage-*.json``) without an UP health record of their
        own worker (``<host>:<pid>``; records of replaced workers are ignored). No stage process = down."""
        rows = (status or {}).get("stages") or []
        up = {(r["stage"], r["worker_id"].rsplit(":", 1)[-1]) for r in rows if r["status"] == "UP"}
        stages = [c for c in self.children() if c.name.startswith("stage-")]
        if not stages:
            return ["(no stage process)"]
        return sorted(c.name for c in stages if (c.name.removeprefix("stage-"), str(c.pid)) not in up)

    def stages_down_settled(self, timeout: float = 60.0) -> list[str]:
        """:meth:`stages_down` once the status API has answered: on a loaded machine one request may take longer
        than its timeout, and an unanswered request is no evidence that stages are down. Asks for up to ``timeout``
        s; the stages still not UP then, each with what the status said of it (:meth:`why_down`), or
        ``["(status API did not answer)"]``."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            status = self.status(timeout=15.0)
            if status is not None:
                last = status
                if not self.stages_down(status):
                    return []
            if time.monotonic() > deadline:
                if last is None:
                    return ["(status API did not answer)"]
                return [f"{name} ({self.why_down(last, name)})" for name in self.stages_down(last)]
            time.sleep(1.0)

    def broker_log_tail(self, lines: int = 12) -> str:
        """The last ``lines`` lines of the embedded broker's log (its warnings and errors), "" when it has none."""
        return file_tail(self.data_dir / "logs" / "tansu.log", lines)

    def why_down(self, status: dict[str, Any], name: str) -> str:
        """What ``status`` says of stage process ``name``: its record's status, age and last error, or the
        workers it has records of when none is of this process."""
        stage = name.removeprefix("stage-")
        pid = next((str(c.pid) for c in self.children() if c.name == name), "?")
        rows = [r for r in (status.get("stages") or []) if r.get("stage") == stage]
        mine = [r for r in rows if str(r.get("worker_id", "")).rsplit(":", 1)[-1] == pid]
        if not mine:
            return f"pid {pid}: no record; records of {[r.get('worker_id') for r in rows]}"
        r, now = mine[0], status.get("time_ms") or 0
        age = (now - (r.get("updated_at") or 0)) / 1000 if now else None
        return f"pid {pid}: {r.get('status')}, record {age} s old, last error {r.get('last_error')!r}"

    def stages_up(self, status: dict[str, Any]) -> bool:
        return not self.stages_down(status)

    def bootstrap(self) -> str:
        return json.loads((self.data_dir / "run.json").read_text())["bootstrap"]

    def children(self) -> list[Child]:
        out = []
        for path in sorted((self.data_dir / "run").glob("*.json")):
            try:
                out.append(Child(path.stem, int(json.loads(path.read_text())["pid"])))
            except (OSError, ValueError, KeyError):
                continue
        return out

    def child(self, name: str) -> Child:
        for c in self.children():
            if c.name == name:
                return c
        raise LookupError(f"no child {name!r} in {self.data_dir / 'run'}")

    def kill9(self) -> None:
        """``kill -9`` of ``edream run`` itself (its children die with it: parent-death signal)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 90.0) -> bool:
        """Ctrl-C; True if it stopped by itself within ``timeout``, else it is killed (process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            return False

    def verify_window(self, kind: str, window_id: str) -> tuple[int, str]:
        """``edream verify window KIND WINDOW`` against this platform: (exit code, last output line)."""
        r = subprocess.run(
            [sys.executable, "-m", "edream.cli", "verify", "window", kind, window_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        lines = (r.stdout or r.stderr).strip().splitlines()
        return r.returncode, lines[0] if lines else ""
