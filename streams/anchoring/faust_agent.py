"""Hosting of the anchoring agent inside the platform's Faust worker (``topology.yaml`` agent module).

The anchoring loop (:class:`~streams.anchoring.agent.AnchoringAgent`) is blocking (web3 HTTP calls, waiting for
confirmations) and commits its own offsets only after a window is anchored, so it runs on its own thread with
its own confluent-kafka consumer instead of a Faust stream (whose acks would commit records of open windows).
ClickHouse calls are funnelled through the worker's single ClickHouse thread (chDB is in-process and allows one
user), via :class:`SerialClient`. If no chain is reachable yet, the loop waits and retries.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

log = logging.getLogger(__name__)


class SerialClient:
    """Proxy of a clickhouse-connect client whose method calls run on ``executor`` (and are waited for)."""

    def __init__(self, client: Any, executor: Executor):
        self._client, self._executor = client, executor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._executor.submit(attr, *args, **kwargs).result()

        return call


def _bootstrap_of(app: Any) -> str:
    broker = app.conf.broker[0]
    return f"{broker.host}:{broker.port}"


def run_loop(build: Callable[[], Any], stop: threading.Event, retry_s: float = 5.0) -> None:
    """Build the agent (retrying while the chain or store is unavailable) and step it until ``stop``."""
    agent = None
    while not stop.is_set() and agent is None:
        try:
            agent = build()
        except Exception as exc:  # noqa: BLE001 - chain not up yet, no key...: keep the worker alive
            log.warning("anchoring agent not started: %s; retrying in %.0fs", exc, retry_s)
            stop.wait(retry_s)
    if agent is None:
        return
    try:
        while not stop.is_set():
            agent.step(timeout_s=1.0)
    finally:
        agent.close()


def register(app: Any, ctx: Any) -> None:
    """Start the anchoring thread when the Faust worker starts; stop it with the worker."""
    from streams.anchoring.agent import AnchoringAgent
    from streams.anchoring.anchorer import Anchorer
    from streams.anchoring.service import AnchoringService, connect
    from streams.anchoring.store import AnchorStore

    stop = threading.Event()

    def build() -> AnchoringAgent:
        settings = ctx.settings.model_copy(update={"kafka_bootstrap_servers": _bootstrap_of(app)})
        client = connect(settings, sign=True, deploy_if_missing=not settings.eth_rpc_url)
        store = AnchorStore(SerialClient(ctx.clickhouse, ctx._ch_executor))
        store.ensure_tables()
        return AnchoringAgent(settings, AnchoringService(client, store, Anchorer(client)))

    @app.task
    async def start_anchoring() -> None:
        threading.Thread(target=run_loop, args=(build, stop), name="anchoring", daemon=True).start()

    atexit.register(stop.set)  # the daemon thread closes its consumer (leaves the group) at exit
