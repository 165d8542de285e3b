"""Wiring: a config directory + a broker -> a running connector (used by the CLI, benchmark and tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import start_http_server

from connectors.command_service import CommandService
from connectors.config import LoadedConfig, load_config
from connectors.metrics import ConnectorMetrics
from connectors.producer import BufferedProducer
from connectors.runtime import ConnectorRuntime
from connectors.shard import ALL_DEVICES, Shard
from edream.kafka import producer_config
from edream.serde import Serde
from edream.settings import Settings

log = structlog.get_logger("connectors")


def build_producer(
    settings: Settings,
    bootstrap: str,
    topic: str,
    max_buffered: int,
    on_ack: Callable[[int], None] | None = None,
    **overrides: Any,
) -> BufferedProducer:
    """Measurements encoded a batch at a time (:meth:`Serde.encode_many`), produced lz4-compressed in
    batches of up to 10,000 messages lingering ``linger.ms`` (:func:`edream.kafka.producer_config`)."""
    serde = Serde(settings)

    def encode_batch(records: list[dict[str, Any]]) -> list[bytes]:
        return serde.encode_many("Measurement", records, topic)

    conf = producer_config(settings, bootstrap, **overrides)
    return BufferedProducer(conf, topic, encode_batch, max_buffered=max_buffered, on_ack=on_ack).start()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("task crashed", task=task.get_name(), error=repr(task.exception()))


class Connector:
    """A runtime plus its producer, and the command service when the config names a ``commands`` topic, for
    the devices of ``shard``. ``async with Connector(...) as c`` runs them in background tasks."""

    def __init__(
        self,
        config: LoadedConfig | Path | str,
        settings: Settings,
        bootstrap: str,
        on_ack: Callable[[int], None] | None = None,
        shard: Shard = ALL_DEVICES,
        **producer_overrides: Any,
    ):
        self.config = config if isinstance(config, LoadedConfig) else load_config(config)
        c = self.config.connector
        producer_overrides.setdefault("linger.ms", c.linger_ms)
        self.producer = build_producer(
            settings, bootstrap, c.topic, c.max_buffered, on_ack, **producer_overrides
        )
        self.metrics = ConnectorMetrics()
        self.runtime = ConnectorRuntime(self.config, self.producer, self.metrics, shard=shard)
        self.commands = (
            CommandService(self.config, settings, bootstrap, self.metrics, shard=shard)
            if c.commands
            else None
        )
        self._task: asyncio.Task[None] | None = None
        self._commands_task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Connector:
        self._task = asyncio.create_task(self.runtime.run(), name="connector")
        if self.commands is not None:
            self._commands_task = asyncio.create_task(self.commands.run(), name="connector-commands")
            self._commands_task.add_done_callback(_log_crash)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, flush_timeout: float = 10.0) -> int:
        """Stop commands and devices, flush; return readings still unacknowledged (0 when all were delivered).

        Commands still in progress are not committed: the next connector process gets them again."""
        if self.commands is not None and self._commands_task is not None:
            self.commands.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await self._commands_task
            self._commands_task = None
        self.runtime.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        return await asyncio.to_thread(self.producer.close, flush_timeout)

    def status(self) -> dict[str, Any]:
        """The runtime's device status, plus the command service's counts when it runs."""
        out = self.runtime.status()
        if self.commands is not None:
            out["commands"] = self.commands.status()
        return out

    def serve_metrics(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, host, registry=self.metrics.registry)
