"""Topology agent ``market``: orders and intervals (participants as a registry view) -> accepted orders, clearing,
trades, settlement, rejections, as a runtime stage (:func:`stage`).

State is per market session (one delivery slot) in the partition that owns the session id: the book, the
nonces, the session's clock, the trades and the delivery data that settle them
(:mod:`streams.market.session_state`). 15-min intervals (keyed by prosumer) are re-keyed to the session of their slot, orders to their session id (through the runtime's
partitioner, see :func:`~streams.market.stream.order_session_keys`); participants are a view every worker
reads whole.

Market parameters come from ``market.yaml`` in the config dir (``EDREAM_CONFIG_DIR``, default the data dir; a worker passes its platform's on) when present (see
:class:`~streams.market.config.MarketConfig`), else the defaults.
"""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path
from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from streams.agents.runtime import host, worker_settings
from streams.app import AgentContext
from streams.deadletter import DEADLETTER_TOPIC
from streams.hosting import topic_names
from streams.market.config import MarketConfig
from streams.market.participants import ParticipantView
from streams.market.processor import (
    TOPIC_CLEARING,
    TOPIC_ORDERS_ACCEPTED,
    TOPIC_REJECTIONS,
    TOPIC_SETTLEMENT,
    TOPIC_TRADES,
    MarketProcessor,
)
from streams.market.stream import (
    INTERVALS_TOPIC,
    ORDERS_TOPIC,
    PARTICIPANTS_TOPIC,
    MarketStage,
    interval_session_keys,
    order_session_keys,
)

NAME = "market"
#: gates close within this long of their time when no order arrives (ms)
TICK_MS = 1000


def market_config(data_dir: Path) -> MarketConfig:
    path = Path(data_dir) / "market.yaml"
    return MarketConfig.from_yaml(path) if path.exists() else MarketConfig()


def stage(settings: Settings, topology: Any, config: MarketConfig | None = None) -> StageSpec:
    """The market stage on the loaded topology's topic names (``config``: default ``market.yaml``)."""
    names = topic_names(topology)
    cfg = config or market_config(settings.config_dir)
    serde = Serde(settings)
    participants = names[PARTICIPANTS_TOPIC]

    def make(views: dict[str, View]) -> MarketStage:
        registry = ParticipantView(views[participants], serde.decode)
        return MarketStage(MarketProcessor(cfg, registry), serde, names)

    outputs = (TOPIC_ORDERS_ACCEPTED, TOPIC_CLEARING, TOPIC_TRADES, TOPIC_SETTLEMENT, TOPIC_REJECTIONS)
    return StageSpec(
        name=NAME,
        inputs=(names[ORDERS_TOPIC], names[INTERVALS_TOPIC]),
        outputs=tuple(names[t] for t in outputs),
        make=make,
        rekey={
            names[ORDERS_TOPIC]: partial(order_session_keys, serde),
            names[INTERVALS_TOPIC]: partial(interval_session_keys, cfg, serde),
        },
        views=(participants,),
        tick_ms=TICK_MS,
        description="P2P market per session: validation, gate closure on event time, clearing, settlement",
    )


def partitions(topology: Any) -> int:
    """Partition count of the stage's inputs (co-partitioned: the orders topic's)."""
    orders = topic_names(topology)[ORDERS_TOPIC]
    return next(t.partitions for t in topology.topics if t.name == orders)


class _HostedStage:
    """Runs the stage's supervisor on the hosting thread until the worker stops (until the runtime starts
    stages itself)."""

    def __init__(self, settings: Settings, topology: Any):
        from edream.runtime.supervisor import StageSupervisor

        names = topic_names(topology)
        self.settings, self.partitions = settings, partitions(topology)
        self.supervisor = StageSupervisor(
            stage(settings, topology),
            settings,
            names[DEADLETTER_TOPIC],
            None,
            partitions(topology),
            handle_signals=False,
        )

    def _create_clock_topic(self) -> None:
        """Workaround: the supervisor's clock may auto-create its topic (without ``retention.ms``, which Quix
        then fails on) before the stage run declares it; create it with explicit configs first."""
        from confluent_kafka.admin import AdminClient, NewTopic

        from edream.kafka import client_config
        from edream.runtime.clock import clock_topic_name

        admin = AdminClient(client_config(self.settings.kafka_bootstrap_servers, self.settings))
        name = clock_topic_name(NAME)
        if name not in admin.list_topics(timeout=10).topics:
            config = {"retention.ms": "3600000", "cleanup.policy": "delete"}
            for fut in admin.create_topics(
                [NewTopic(name, self.partitions, self.settings.runtime_replication_factor, config=config)]
            ).values():
                fut.result(15)

    def run(self, stop: threading.Event) -> None:
        self._create_clock_topic()
        watcher = threading.Thread(target=lambda: (stop.wait(), self.supervisor.stop()), daemon=True)
        watcher.start()
        self.supervisor.run()


def register(app: Any, ctx: AgentContext) -> None:
    """Host the stage inside the Faust worker (the old StatefulLoop hosting of the market is gone)."""
    host(app, NAME, lambda: _HostedStage(worker_settings(app, ctx), ctx.topology))
