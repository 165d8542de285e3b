"""The connector runtime: many devices in one process, each reading -> Measurement on Kafka.

Each device runs as its own asyncio task (a driver from :mod:`connectors.drivers`); a device that is down, slow
or returns garbage is retried with backoff and reported in :meth:`ConnectorRuntime.status` and the metrics,
and never stalls other devices. Readings get a per-device sequence number and are offered to a
:class:`~connectors.producer.Sink` keyed by device id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import structlog

from connectors.config import LoadedConfig
from connectors.metrics import ConnectorMetrics
from connectors.models import Quality, Reading, now_ms, to_measurement
from connectors.producer import Sink
from connectors.shard import ALL_DEVICES, Shard, shard_devices
from edream.retry import Delays

log = structlog.get_logger("connectors")


@dataclass
class DeviceStatus:
    """What an operator needs to know about one device. Times are UTC epoch ms."""

    device_id: str
    protocol: str
    state: str = "starting"  # starting | up | down
    last_ok_ts: int | None = None
    last_error: str | None = None
    last_error_ts: int | None = None
    consecutive_failures: int = 0
    readings: int = 0
    bad_readings: int = 0


class DeviceContext:
    """Handed to a driver: emit readings, report success/failure, back off."""

    def __init__(self, runtime: ConnectorRuntime, device: Any):
        self.runtime = runtime
        self.device = device
        self.status = runtime.statuses.setdefault(device.id, DeviceStatus(device.id, device.protocol))
        self.backoff = Delays(device.backoff_initial_s, device.backoff_max_s)

    def emit(self, readings: Iterable[Reading]) -> int:
        return self.runtime.emit(readings, self.status)

    def ok(self) -> None:
        st = self.status
        if st.state != "up":
            log.info("device up", device=st.device_id)
        st.state, st.last_ok_ts, st.consecutive_failures = "up", now_ms(), 0
        self.backoff.reset()
        self.runtime.metrics.device_up.labels(st.device_id).set(1)

    def bad_payload(self, exc: BaseException) -> None:
        """A message that could not be mapped at all: counted and reported, the device stays up."""
        st = self.status
        st.last_error, st.last_error_ts = f"{type(exc).__name__}: {exc}", now_ms()
        self.runtime.metrics.device_errors.labels(st.device_id).inc()
        log.warning("bad payload", device=st.device_id, error=st.last_error)

    def failed(self, exc: BaseException) -> float:
        """Record a failure; return the backoff delay (s) before the next attempt."""
        st = self.status
        st.state, st.last_error, st.last_error_ts = "down", f"{type(exc).__name__}: {exc}", now_ms()
        st.consecutive_failures += 1
        self.runtime.metrics.device_up.labels(st.device_id).set(0)
        self.runtime.metrics.device_errors.labels(st.device_id).inc()
        delay = self.backoff.next()
        log.warning("device failed", device=st.device_id, error=st.last_error, retry_in_s=round(delay, 2))
        return delay


Driver = Callable[[DeviceContext], Awaitable[None]]


class ConnectorRuntime:
    """Runs the enabled devices of a :class:`LoadedConfig` that belong to ``shard`` until :meth:`stop`."""

    def __init__(
        self,
        config: LoadedConfig,
        sink: Sink,
        metrics: ConnectorMetrics | None = None,
        driver_for: Callable[[Any], Driver] | None = None,
        shard: Shard = ALL_DEVICES,
    ):
        self.config = config
        self.shard = shard
        self.connector_id = config.connector.id
        self.sink = sink
        self.metrics = metrics or ConnectorMetrics()
        self.statuses: dict[str, DeviceStatus] = {}
        self._seq: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        if driver_for is None:
            from connectors.drivers import driver_for as default_driver_for

            driver_for = default_driver_for
        self._driver_for = driver_for
        self.dropped = 0
        self.stopping = False

    def emit(self, readings: Iterable[Reading], status: DeviceStatus | None = None) -> int:
        """Stamp seq + ingest time and offer the readings to the sink. Returns how many were accepted."""
        return self.emit_batch([(readings, status)])

    def emit_batch(self, groups: Iterable[tuple[Iterable[Reading], DeviceStatus | None]]) -> int:
        """:meth:`emit` for several devices' readings at once: one sink batch (one Avro encoding pass)."""
        ingest = now_ms()
        connector_id, seqs = self.connector_id, self._seq
        items: list[tuple[str, dict[str, Any]]] = []
        counts: dict[tuple[str, str], int] = {}
        for readings, status in groups:
            n0 = len(items)
            for r in readings:
                seq = seqs.get(r.device_id, 0) + 1
                seqs[r.device_id] = seq
                items.append((r.device_id, to_measurement(r, connector_id, seq, ingest)))
                k = (r.source_protocol, r.quality)
                counts[k] = counts.get(k, 0) + 1
                if status is not None and r.quality is Quality.BAD:
                    status.bad_readings += 1
            if status is not None:
                status.readings += len(items) - n0
        accepted = self.sink.offer_batch(items) if items else 0
        if accepted < len(items):
            self.dropped += len(items) - accepted
            self.metrics.dropped.inc(len(items) - accepted)
        for (proto, quality), n in counts.items():
            self.metrics.readings.labels(proto, quality).inc(n)
        buffered = getattr(self.sink, "buffered", None)
        if buffered is not None:
            self.metrics.buffered.set(buffered)
        return accepted

    def seq(self, device_id: str) -> int:
        return self._seq.get(device_id, 0)

    async def run(self) -> None:
        """Start one task per enabled device plus shared sessions; return after :meth:`stop`."""
        from connectors.drivers import start_shared

        contexts = [DeviceContext(self, dev) for dev in shard_devices(self.config.devices, self.shard)]
        shared = await start_shared(self, contexts)
        for ctx in contexts:
            self._tasks.append(asyncio.create_task(self._guard(ctx), name=f"device:{ctx.device.id}"))
        try:
            await self._stopped.wait()
        finally:
            self.stopping = True
            await self._cancel_all()
            for s in shared:
                await s.close()

    async def _cancel_all(self) -> None:
        """Cancel device tasks; re-cancel stragglers (some client libraries swallow a CancelledError)."""
        pending = {t for t in self._tasks if not t.done()}
        while pending:
            for t in pending:
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                t.result()
        self._tasks.clear()

    async def _guard(self, ctx: DeviceContext) -> None:
        """A driver must never end or crash the process: restart it after a backoff."""
        driver = self._driver_for(ctx.device)
        while True:
            try:
                await driver(ctx)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any device failure is reported and retried
                await asyncio.sleep(ctx.failed(exc))

    def stop(self) -> None:
        self._stopped.set()

    def status(self) -> dict[str, Any]:
        return {
            "connector_id": self.connector_id,
            "shard": self.shard.label,
            "devices": {k: asdict(v) for k, v in sorted(self.statuses.items())},
            "dropped": self.dropped,
            "buffered": getattr(self.sink, "buffered", 0),
        }


async def poll_loop(ctx: DeviceContext, poll_once: Callable[[], Awaitable[list[Reading]]]) -> None:
    """Drift-free polling every ``poll_interval_s``; failures back off; timeouts count as failures."""
    dev = ctx.device
    loop = asyncio.get_running_loop()
    next_t = loop.time()
    hist = ctx.runtime.metrics.poll_seconds.labels(dev.protocol)
    while not ctx.runtime.stopping:
        t0 = loop.time()
        try:
            async with asyncio.timeout(dev.timeout_s):  # (wait_for can swallow a cancel on 3.11)
                readings = await poll_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, retried with backoff
            await asyncio.sleep(ctx.failed(exc))
            next_t = loop.time()
            continue
        hist.observe(loop.time() - t0)
        ctx.ok()
        ctx.emit(readings)
        next_t += dev.poll_interval_s
        now = loop.time()
        if next_t < now:  # overran: skip missed slots rather than bursting
            next_t = now + dev.poll_interval_s - ((now - next_t) % dev.poll_interval_s)
        await asyncio.sleep(next_t - now)
