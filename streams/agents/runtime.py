"""Shared wiring of the hosted stream services: topic names, consumer groups, state files, the worker thread.

Each service's Kafka loop runs on its own thread inside the Faust worker (:func:`streams.hosting.host`), joins
consumer group ``<app id>-<service>`` and keeps its snapshot under ``<EDREAM_DATA_DIR>/state/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from edream.serde import Serde
from edream.settings import Settings
from streams.app import AgentContext
from streams.deadletter import DEADLETTER_TOPIC
from streams.hosting import HostedThread, bootstrap_of, host, topic_names

__all__ = ["group_id", "host", "host_stateful", "state_dir", "topics", "worker_settings"]
from streams.stateful_loop import LoopConfig, Processor, StatefulLoop


def state_dir(settings: Settings) -> Path:
    return Path(settings.edream_data_dir) / "state"


def group_id(settings: Settings, service: str) -> str:
    return f"{settings.edream_app_id}-{service}"


def worker_settings(app: Any, ctx: AgentContext) -> Settings:
    """The context's settings pointed at the worker's broker."""
    return ctx.settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_of(app)})


def topics(ctx: AgentContext) -> dict[str, str]:
    return topic_names(ctx.topology)


def host_stateful(
    app: Any,
    ctx: AgentContext,
    service: str,
    inputs: Iterable[str],
    make: Callable[[Serde, bytes | None], Processor],
    replay_from_start: Iterable[str] = (),
    caught_up_slack: int = 0,
) -> HostedThread:
    """Host a :class:`StatefulLoop` reading the canonical ``inputs`` with the processor ``make`` builds;
    ``replay_from_start``: canonical names of compacted inputs re-read from the beginning on every start;
    ``caught_up_slack``: messages per partition a loop may lag and still run its timers (see ``caught_up``)."""
    names = topics(ctx)

    def build() -> StatefulLoop:
        settings = worker_settings(app, ctx)
        cfg = LoopConfig(
            settings=settings,
            bootstrap=settings.kafka_bootstrap_servers,
            group_id=group_id(settings, service),
            inputs=[names[t] for t in inputs],
            state_file=state_dir(settings) / f"{group_id(settings, service)}.pkl",
            replay_from_start=tuple(names[t] for t in replay_from_start),
            deadletter_topic=names.get(DEADLETTER_TOPIC),
            caught_up_slack=caught_up_slack,
        )
        serde = Serde(settings)
        return StatefulLoop(cfg, lambda blob: make(serde, blob))

    return host(app, service, build)
