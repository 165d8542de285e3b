"""The Faust application: one per worker process, built from settings once the broker address is known.

Stream stages run on the one runtime (:mod:`edream.runtime`, their module defines ``stage()``); the agents this
worker hosts itself (the ClickHouse sink: this process owns chDB) expose ``register(app, ctx)``. Which ones run is
read from ``topology.yaml`` (the ``module`` of each agent), so the topology stays the one map of the system.
"""

from __future__ import annotations

import asyncio
import importlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust

from edream.kafka_security import KafkaSecurity
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import Topology


@dataclass
class AgentContext:
    """What agents share: settings, topology, serde, a ClickHouse client (this process owns chDB) and counters."""

    settings: Settings
    topology: Topology
    serde: Serde
    clickhouse: Any = None
    counters: dict[str, int] = field(default_factory=dict)
    _ch_executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "clickhouse"))

    async def in_clickhouse_thread(self, fn: Any, *args: Any) -> Any:
        """Run a blocking ClickHouse call off the event loop, serialised on one thread (chDB is in-process)."""
        return await asyncio.get_running_loop().run_in_executor(self._ch_executor, fn, *args)

    def topic_of(self, schema_name: str) -> str:
        """The one topic in the topology carrying ``schema_name`` (e.g. the dead-letter topic)."""
        topics = self.topology.topic_for_schema(schema_name)
        if len(topics) != 1:
            raise LookupError(f"topology must declare exactly one {schema_name} topic, found {len(topics)}")
        return topics[0].name

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n


def create_app(
    settings: Settings,
    bootstrap: str,
    app_id: str | None = None,
    web_port: int | None = None,
    partitions: int = 4,
) -> faust.App:
    return faust.App(
        app_id or settings.edream_app_id,
        broker=f"kafka://{bootstrap}",
        broker_credentials=KafkaSecurity.from_settings(settings).faust_credentials(),  # SASL/TLS from env
        store="memory://",
        topic_partitions=partitions,
        topic_allow_declare=False,  # topics come from topology.yaml via `edream topics apply`
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_bind=settings.edream_web_host,
        web_in_thread=False,
    )


def raw_topic(app: faust.App, name: str) -> Any:
    """A topic whose keys and values the agents decode themselves (so undecodable bytes can go to the DLQ)."""
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def register_agents(app: faust.App, ctx: AgentContext, only: list[str] | None = None) -> list[str]:
    """Import each topology agent's module and call its ``register(app, ctx)``."""
    names = []
    for agent in ctx.topology.agents:
        if only is not None and agent.name not in only:
            continue
        importlib.import_module(agent.module).register(app, ctx)
        names.append(agent.name)
    return names
