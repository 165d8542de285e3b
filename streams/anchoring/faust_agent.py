"""Hosting of the anchoring agent inside the platform's Faust worker (``topology.yaml`` agent module).

The anchoring loop (:class:`~streams.anchoring.agent.AnchoringAgent`) is blocking (web3 HTTP calls, waiting for
confirmations) and commits its own offsets only after a window is anchored, so it runs on its own thread with
its own confluent-kafka consumer instead of a Faust stream (whose acks would commit records of open windows).
ClickHouse calls are funnelled through the worker's single ClickHouse thread (chDB is in-process and allows one
user), via :class:`~streams.hosting.SerialClient`. If no chain is reachable yet, the loop waits and retries.
"""

from __future__ import annotations

import time
from typing import Any

from streams.deadletter import DEADLETTER_TOPIC
from streams.hosting import SerialClient, bootstrap_of, host, run_loop, topic_names

__all__ = ["SerialClient", "register", "run_loop"]


def register(app: Any, ctx: Any) -> None:
    """Start the anchoring thread when the Faust worker starts; stop it with the worker."""
    from streams.anchoring.agent import RECEIPTS_TOPIC, REJECTIONS_TOPIC, SETTLEMENT_TOPICS, AnchoringAgent
    from streams.anchoring.anchorer import Anchorer
    from streams.anchoring.service import AnchoringService, connect
    from streams.anchoring.store import AnchorStore
    from streams.anchoring.windows import MINUTE_MS, WindowGrouper

    def build() -> AnchoringAgent:
        settings = ctx.settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_of(app)})
        client = connect(settings, sign=True, deploy_if_missing=not settings.eth_rpc_url)
        store = AnchorStore(SerialClient(ctx.clickhouse, ctx._ch_executor))
        store.ensure_tables()
        names = topic_names(ctx.topology)  # follow the loaded topology's topic names
        return AnchoringAgent(
            settings,
            AnchoringService(client, store, Anchorer(client)),
            topics=tuple(names[t] for t in SETTLEMENT_TOPICS),
            receipts_topic=names[RECEIPTS_TOPIC],
            rejections_topic=names[REJECTIONS_TOPIC],
            deadletter_topic=names[DEADLETTER_TOPIC],
            grouper=WindowGrouper(
                period_ms=int(settings.anchor_window_minutes * MINUTE_MS),
                grace_ms=int(settings.anchor_grace_minutes * MINUTE_MS),
            ),
            wall_clock=lambda: int(time.time() * 1000),
        )

    host(app, "anchoring", build)
