"""Which component runs where: resolve configured endpoints or start the embedded defaults.

``edream run`` writes ``<data dir>/run.json`` (pid and its start time, broker, web URL) so other commands on
the same machine (``status``, ``topics apply``, ``tail``) find the embedded broker the running platform started.
A ``run.json`` left by a killed run is recognised as stale: its pid is gone, or now belongs to another process
(pids are reused, and in a container every run may be pid 1).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient

from edream.embedded.broker import EmbeddedBroker
from edream.embedded.object_store import EmbeddedObjectStore
from edream.embedded.process import create_time, reap_orphans, same_process, start_on_fresh_ports
from edream.embedded.retention import FilerBatches, RetentionJanitor
from edream.embedded.watchdog import ChildWatchdog, Watched
from edream.kafka import client_config
from edream.logs import first_line
from edream.settings import Settings
from edream.web_auth import auth_headers

log = logging.getLogger(__name__)
#: seconds ``edream status`` waits for the running platform's ``/api/status``
STATUS_TIMEOUT_S = 15.0


@dataclass
class RunState:
    pid: int
    bootstrap: str
    web_url: str
    clickhouse_dsn: str
    eth_rpc_url: str | None = None
    create_time: float | None = None  # of ``pid`` (psutil, epoch s): tells a live run from a reused pid

    @classmethod
    def of_this_process(cls, **fields: Any) -> RunState:
        return cls(pid=os.getpid(), create_time=create_time(os.getpid()), **fields)

    @property
    def alive(self) -> bool:
        """The recorded run is still running: same pid *and* same process (start time), and not us."""
        if self.pid == os.getpid() or self.create_time is None:
            return False
        return same_process(self.pid, self.create_time)

    @staticmethod
    def path(settings: Settings) -> Path:
        return settings.edream_data_dir / "run.json"

    def save(self, settings: Settings) -> None:
        p = self.path(settings)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load_live(cls, settings: Settings) -> RunState | None:
        """The state of a running platform on this machine, or None."""
        p = cls.path(settings)
        if not p.is_file():
            return None
        try:
            st = cls(**json.loads(p.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return st if st.alive else None


class NoBroker(RuntimeError):
    pass


def resolve_bootstrap(settings: Settings) -> str:
    """Configured brokers, else the embedded broker of a running platform."""
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    live = RunState.load_live(settings)
    if live:
        return live.bootstrap
    raise NoBroker(
        "no broker: set KAFKA_BOOTSTRAP_SERVERS, or start the platform with `edream run` "
        "(it starts an embedded broker)"
    )


class Stack:
    """Starts the embedded parts the settings leave unconfigured; ``stop()`` stops what it started.

    ``start()`` first stops whatever children a killed run on the same data dir left behind
    (:func:`~edream.embedded.process.reap_orphans`), so their ports and state files are free again."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.object_store: EmbeddedObjectStore | None = None
        self.broker: EmbeddedBroker | None = None
        self.janitor: RetentionJanitor | None = None
        self.bootstrap: str = settings.kafka_bootstrap_servers or ""
        self.chain: Any = None
        self.eth_rpc_url: str | None = settings.eth_rpc_url
        self.contracts: dict[str, str] = {}

    @property
    def state_dir(self) -> Path:
        """Where the children's records live (see :class:`~edream.embedded.process.ChildRecord`)."""
        return self.settings.edream_data_dir / "run"

    def child_env(self) -> dict[str, str]:
        """Environment of processes that join this stack (stage processes): its broker, chain and data dir."""
        # an embedded chain is found (with its dev key and deployments) from the shared data dir, not ETH_RPC_URL,
        # which means an external chain whose key must be configured
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "EDREAM_DATA_DIR": str(self.settings.edream_data_dir),
        }
        if self.broker is not None:
            env["RUNTIME_TRUST_LOCAL_STATE"] = "false"
        return env

    def start(self, chain: bool = True) -> Stack:
        data = self.settings.edream_data_dir
        for child in reap_orphans(self.state_dir):
            log.warning("stopped %s (pid %d) left running by a killed run", child.name, child.pid)
        try:
            if self.settings.embedded_broker:
                if self.settings.edream_broker_storage == "s3":
                    self.object_store = start_on_fresh_ports(
                        lambda: EmbeddedObjectStore(data, state_dir=self.state_dir), EmbeddedObjectStore.start
                    )
                self.broker = start_on_fresh_ports(
                    lambda: EmbeddedBroker(data, object_store=self.object_store, state_dir=self.state_dir),
                    EmbeddedBroker.start,
                )
                self.bootstrap = self.broker.bootstrap
                if self.object_store:  # Tansu's S3 engine applies no retention itself
                    store = self.object_store
                    self.janitor = RetentionJanitor(
                        FilerBatches(lambda: store.filer_url, store.bucket)
                    ).start()
            if chain and not self.settings.eth_rpc_url:
                from edream.embedded.anvil import start_embedded_chain

                self.chain, self.contracts = start_embedded_chain(data)
                self.eth_rpc_url = self.chain.rpc_url
        except Exception:
            self.stop()
            raise
        return self

    def watchdog(self) -> ChildWatchdog:
        """A (not yet started) watchdog that restarts the embedded children this stack started if one exits,
        object store first (see :mod:`edream.embedded.watchdog`)."""
        watched = []
        if self.object_store:
            store = self.object_store
            watched.append(Watched("object store", lambda: store.process.running, store.start))
        if self.broker:
            watched.append(Watched("broker", lambda: self.broker.running, self.broker.start))
        if self.chain:
            watched.append(Watched("anvil", lambda: self.chain.process.running, self.chain.start))
        return ChildWatchdog(watched)

    def stop(self) -> None:
        if self.chain:
            self.chain.stop()
        if self.janitor:
            self.janitor.stop()
        if self.broker:
            self.broker.stop()
        if self.object_store:
            self.object_store.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ComponentStatus:
    name: str
    where: str
    reachable: bool
    detail: str = ""


def check_broker(bootstrap: str | None) -> ComponentStatus:
    if not bootstrap:
        return ComponentStatus("kafka", "embedded (not running)", False, "start it with `edream run`")
    try:
        md = AdminClient(client_config(bootstrap)).list_topics(timeout=3)
        return ComponentStatus(
            "kafka", bootstrap, True, f"{len(md.brokers)} broker(s), {len(md.topics)} topics"
        )
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return ComponentStatus("kafka", bootstrap, False, str(exc))


def live_status(settings: Settings, live: RunState) -> dict[str, Any]:
    """The running platform's own ``/api/status`` (its sink counts, stage health, chDB), or ``{"error": ...}``.

    The platform answers from memory, but a loaded machine can hold its event loop for seconds (a demo start uploads an
    hour of readings): ``STATUS_TIMEOUT_S`` waits that out rather than report a running platform as unreachable."""
    try:
        return httpx.get(
            f"{live.web_url}/api/status", headers=auth_headers(settings), timeout=STATUS_TIMEOUT_S
        ).json()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return {"error": f"{live.web_url}/api/status: {first_line(exc) or type(exc).__name__}"}


def check_clickhouse(
    settings: Settings, live: RunState | None, answer: dict[str, Any] | None
) -> ComponentStatus:
    """``answer`` is the running platform's ``/api/status`` (embedded chDB belongs to that process: it is asked)."""
    dsn = settings.effective_clickhouse_dsn
    shown = dsn.split("@")[-1]
    if dsn.startswith("chdb://") and live:
        if answer is None or "error" in answer:
            detail = (answer or {}).get("error", "no answer")
            return ComponentStatus("clickhouse", shown, False, f"platform web API unreachable: {detail}")
        return ComponentStatus(
            "clickhouse",
            f"chDB {shown} (in platform pid {live.pid})",
            answer["clickhouse"]["reachable"],
            answer["clickhouse"].get("detail", ""),
        )
    try:
        from edream.clickhouse import get_client

        ver = get_client(settings).server_version
        return ComponentStatus("clickhouse", shown, True, f"version {ver}")
    except Exception as exc:  # noqa: BLE001
        return ComponentStatus("clickhouse", shown, False, first_line(exc))


def check_chain(settings: Settings, live: RunState | None) -> ComponentStatus:
    url = settings.eth_rpc_url or (live.eth_rpc_url if live else None)
    if not url:
        return ComponentStatus("ethereum", "embedded anvil (not running)", False, "started by `edream run`")
    try:
        r = httpx.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}, timeout=3
        ).json()
        return ComponentStatus("ethereum", url, True, f"block {int(r['result'], 16)}")
    except Exception as exc:  # noqa: BLE001
        return ComponentStatus("ethereum", url, False, str(exc))


def platform_status(settings: Settings) -> dict[str, Any]:
    live = RunState.load_live(settings)
    bootstrap = settings.kafka_bootstrap_servers or (live.bootstrap if live else None)
    answer = live_status(settings, live) if live else None
    comps = [check_broker(bootstrap), check_clickhouse(settings, live, answer), check_chain(settings, live)]
    out: dict[str, Any] = {
        "platform": {
            "running": bool(live),
            "pid": live.pid if live else None,
            "web": live.web_url if live else None,
        },
        "components": [asdict(c) for c in comps],
    }
    if answer is not None:
        out["platform"]["live"] = answer
    if comps[0].reachable:
        out["lag"] = _worker_lag(settings, bootstrap)
    return out


def _worker_lag(settings: Settings, bootstrap: str | None) -> dict[str, Any]:
    """Unprocessed messages per input topic for the workers' consumer group (``EDREAM_APP_ID``)."""
    from edream.dashboard.lag import consumer_lag
    from edream.topology import TopologyError, load_topology

    try:
        topo = load_topology(settings.edream_topology)
        inputs = {t for a in topo.agents for t in a.inputs}
        return consumer_lag(bootstrap or "", settings.edream_app_id, inputs, timeout=3)
    except (TopologyError, Exception) as exc:  # noqa: BLE001 - status reports, never raises
        return {"error": first_line(exc)}
