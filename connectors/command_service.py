"""The connector's command path: ``device.commands.v1`` -> the devices of this config -> results on Kafka.

One consumer group per connector process (``<EDREAM_APP_ID>-<connector id>-commands``, with
``-shard-<i>-of-<N>`` appended for shard ``i/N``) reads the whole commands topic; commands for devices of other
connectors or other shards are skipped (each shard's own group commits past them), the others are planned
(:func:`connectors.commands.plan_command`), held until ``valid_from``, executed one at a time per device and
retried with the device's backoff until ``valid_until``. Every outcome becomes a ``DeviceCommandResult`` (key
device id); undecodable messages go to the dead-letter topic. An offset is committed only after the result
(or dead letter) of that message and of every earlier message of its partition was acknowledged by the
broker; a command id already taken by this process is not executed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from connectors.commands import (
    Command,
    CommandStatus,
    OffsetTracker,
    SeenCommands,
    Step,
    Verdict,
    plan_command,
    result_record,
    retry_allowed,
)
from connectors.config import LoadedConfig
from connectors.control import Controller, Refused, controller_for
from connectors.metrics import ConnectorMetrics
from connectors.models import now_ms
from connectors.shard import ALL_DEVICES, Shard
from edream.kafka import consumer_config, producer_config
from edream.retry import Delays
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams.deadletter import dead_letter

log = structlog.get_logger("connectors.commands")


class AckedProducer:
    """A confluent-kafka producer whose ``send`` returns once the broker acknowledged the message.

    A failed delivery is re-sent (never given up: ``message.timeout.ms=0`` keeps it queued while the broker
    is away). A background thread serves delivery reports.
    """

    def __init__(self, conf: dict[str, Any]):
        self._p = Producer(conf)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="command-results-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._p.poll(0.1)

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[KafkaError | None] = loop.create_future()

            def on_delivery(err: KafkaError | None, _msg: Message, fut: asyncio.Future = fut) -> None:
                with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                    loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(err))

            while True:
                try:
                    self._p.produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:
                    await asyncio.sleep(0.05)
            err = await fut
            if err is None:
                return
            log.warning("delivery failed, re-sending", topic=topic, error=str(err))
            await asyncio.sleep(0.5)

    def close(self, timeout: float = 10.0) -> int:
        """Stop serving reports, flush; return messages still undelivered."""
        self._stop.set()
        self._thread.join()
        return self._p.flush(timeout)


class CommandService:
    """Consumes device commands for the devices of ``config`` until :meth:`stop`. Times are UTC epoch ms
    from ``clock``."""

    def __init__(
        self,
        config: LoadedConfig,
        settings: Settings,
        bootstrap: str,
        metrics: ConnectorMetrics | None = None,
        clock: Callable[[], int] = now_ms,
        shard: Shard = ALL_DEVICES,
        **consumer_overrides: Any,
    ):
        c = config.connector
        if not c.commands:
            raise ValueError(f"connector {c.id}: no commands topic configured")
        self.topic, self.results_topic, self.deadletter_topic = c.commands, c.command_results, c.deadletter
        self.connector_id = c.id
        self.shard = shard
        self.devices = {d.id: d for d in config.devices if shard.owns(d.id)}
        self.disabled = {
            i for i in set(config.device_files) - {d.id for d in config.devices} if shard.owns(i)
        }
        self.foreign = set(config.device_files) - set(self.devices) - self.disabled  # other shards' devices
        self.group_id = f"{settings.edream_app_id}-{c.id}-commands{shard.suffix}"
        self.max_in_progress = c.command_concurrency
        self.metrics = metrics or ConnectorMetrics()
        self.clock = clock
        self.serde = Serde(settings)
        self.seen = SeenCommands()
        self.offsets = OffsetTracker()
        self.counts: Counter[str] = Counter()  # results by status, plus skipped:<reason>
        self._consumer_conf = consumer_config(settings, self.group_id, bootstrap, **consumer_overrides)
        self._producer = AckedProducer(producer_config(settings, bootstrap, **{"linger.ms": 5}))
        self._controllers: dict[str, Controller | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

    # -- consuming --------------------------------------------------------------------------------------
    async def run(self) -> None:
        consumer = Consumer(self._consumer_conf)

        def on_revoke(cons: Consumer, parts: list[TopicPartition]) -> None:
            revoked = {(p.topic, p.partition) for p in parts}
            self._commit_now(cons, self.offsets.committable(revoked))
            self.offsets.forget(revoked)

        consumer.subscribe([self.topic], on_revoke=on_revoke)
        log.info("commands: consuming", topic=self.topic, group=self.group_id, devices=len(self.devices))
        paused = False
        try:
            while not self._stopping.is_set():
                for msg in await asyncio.to_thread(consumer.consume, 100, 0.5):
                    if msg.error() is not None:
                        log.warning("commands: consumer error", error=str(msg.error()))
                        continue
                    self._take(msg)
                await asyncio.to_thread(self._commit_now, consumer, self.offsets.committable())
                busy = len(self._tasks) >= self.max_in_progress
                if busy != paused:  # keep polling (group membership) but stop fetching while saturated
                    parts = consumer.assignment()
                    (consumer.pause if busy else consumer.resume)(parts)
                    paused = busy
                    log.info(
                        "commands: paused" if busy else "commands: resumed", in_progress=len(self._tasks)
                    )
        finally:
            await self._cancel_tasks()
            await asyncio.to_thread(self._commit_now, consumer, self.offsets.committable())
            await asyncio.to_thread(consumer.close)
            await asyncio.to_thread(self._producer.close)
            for ctl in self._controllers.values():
                if ctl is not None:
                    with contextlib.suppress(Exception):
                        await ctl.aclose()

    def stop(self) -> None:
        self._stopping.set()

    def _commit_now(self, consumer: Consumer, ready: dict[tuple[str, int], int]) -> None:
        if not ready:
            return
        try:
            consumer.commit(
                offsets=[TopicPartition(t, p, off) for (t, p), off in ready.items()], asynchronous=False
            )
        except KafkaException as exc:  # e.g. during a rebalance: the next advance commits further
            log.warning("commands: commit failed", error=str(exc), offsets=str(ready))

    def _take(self, msg: Message) -> None:
        tp, offset = (msg.topic(), msg.partition()), msg.offset()
        self.offsets.take(tp, offset)
        try:
            name, record = self.serde.decode(msg.value(), msg.topic())
            if name != "DeviceCommand":
                raise DecodeError(f"expected DeviceCommand, got {name}")
            cmd = Command.from_record(record)
        except (DecodeError, KeyError, ValueError) as exc:
            self._skip("undecodable")
            if self._dead_letters(msg.key()):
                self._spawn(self._dead_letter(msg, exc), tp, offset, "deadletter")
            else:
                self.offsets.done(tp, offset)
            return
        if cmd.device_id not in self.devices and cmd.device_id not in self.disabled:
            self._skip("other_shard" if cmd.device_id in self.foreign else "other_device")
            self.offsets.done(tp, offset)
            return
        if not self.seen.add(cmd.command_id):
            self._skip("duplicate")
            log.info("command duplicate, not executed again", command_id=cmd.command_id, device=cmd.device_id)
            self.offsets.done(tp, offset)
            return
        log.info(
            "command received",
            command_id=cmd.command_id,
            device=cmd.device_id,
            target=cmd.target_id,
            action=str(cmd.action),
            value=cmd.value,
            valid_from=cmd.valid_from,
            valid_until=cmd.valid_until,
            source=cmd.source,
        )
        self._spawn(self._handle(cmd), tp, offset, cmd.command_id)

    def _dead_letters(self, key: bytes | None) -> bool:
        """One shard dead-letters an undecodable command: the owner of its key (the device id), shard 0 for a
        message without a readable key."""
        try:
            return self.shard.owns(key.decode()) if key else self.shard.index == 0
        except UnicodeDecodeError:
            return self.shard.index == 0

    def _skip(self, reason: str) -> None:
        self.counts[f"skipped:{reason}"] += 1
        self.metrics.commands_skipped.labels(reason).inc()

    def _spawn(self, coro: Coroutine[Any, Any, None], tp: tuple[str, int], offset: int, name: str) -> None:
        task = asyncio.create_task(coro, name=f"command:{name}")
        self._tasks.add(task)
        self.metrics.commands_in_progress.set(len(self._tasks))

        def finished(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.metrics.commands_in_progress.set(len(self._tasks))
            if t.cancelled():
                return  # stopping: not committed, redelivered to the next process
            if t.exception() is not None:  # not committed either: a restart retries it
                log.error("command task crashed", task=t.get_name(), error=repr(t.exception()))
                return
            self.offsets.done(tp, offset)

        task.add_done_callback(finished)

    async def _cancel_tasks(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)

    # -- executing ----------------------------------------------------------------------------------------
    async def _handle(self, cmd: Command) -> None:
        received = self.clock()
        device = self.devices.get(cmd.device_id)
        if device is None:
            plan: Step | Verdict = Verdict(
                CommandStatus.FAILED,
                f"device {cmd.device_id} is disabled in the config of {self.connector_id}",
            )
        else:
            plan = plan_command(cmd, device, received)
        if isinstance(plan, Verdict):
            await self._finish(cmd, plan.status, plan.detail, 0, received)
            return
        wait_ms = cmd.valid_from - self.clock()
        if wait_ms > 0:
            log.info(
                "command scheduled", command_id=cmd.command_id, device=cmd.device_id, in_s=wait_ms / 1000
            )
            await asyncio.sleep(wait_ms / 1000)
        async with self._locks.setdefault(cmd.device_id, asyncio.Lock()):  # one command at a time per device
            status, detail, attempts = await self._execute(cmd, plan, device)
        await self._finish(cmd, status, detail, attempts, self.clock())

    def _controller(self, device: Any) -> Controller:
        if device.id not in self._controllers:
            self._controllers[device.id] = controller_for(device)
        ctl = self._controllers[device.id]
        assert ctl is not None, "plan_command only plans steps for devices with controls"
        return ctl

    async def _execute(self, cmd: Command, step: Step, device: Any) -> tuple[CommandStatus, str, int]:
        """Attempt ``step`` until the device confirms, refuses, or no retry fits before ``valid_until``."""
        controller = self._controller(device)
        backoff = Delays(device.backoff_initial_s, device.backoff_max_s)
        attempts, last = 0, ""
        while True:
            if self.clock() >= cmd.valid_until:
                if attempts == 0:
                    return CommandStatus.EXPIRED, "valid_until passed while the device was busy", 0
                return CommandStatus.FAILED, f"{last} (valid_until passed)", attempts
            attempts += 1
            try:
                async with asyncio.timeout(device.timeout_s):
                    answer = await controller.execute(step)
                return CommandStatus.EXECUTED, answer, attempts
            except Refused as exc:
                return CommandStatus.FAILED, str(exc), attempts
            except TimeoutError:
                last = f"no answer within {device.timeout_s} s"
            except Exception as exc:  # noqa: BLE001 - unreachable/garbled device: retried with backoff
                last = f"{type(exc).__name__}: {exc}"
            delay = backoff.next()
            if not retry_allowed(self.clock(), delay, cmd.valid_until):
                return CommandStatus.FAILED, f"{last} (no retry fits before valid_until)", attempts
            log.warning(
                "command attempt failed",
                command_id=cmd.command_id,
                device=cmd.device_id,
                attempt=attempts,
                error=last,
                retry_in_s=round(delay, 2),
            )
            await asyncio.sleep(delay)

    async def _finish(
        self, cmd: Command, status: CommandStatus, detail: str, attempts: int, executed_at: int
    ) -> None:
        record = result_record(cmd, status, detail, attempts, executed_at)
        value = self.serde.encode("DeviceCommandResult", record, self.results_topic)
        await self._producer.send(self.results_topic, cmd.device_id.encode(), value)
        self.counts[status] += 1
        self.metrics.commands.labels(str(cmd.action), status).inc()
        log.info(
            "command result",
            command_id=cmd.command_id,
            device=cmd.device_id,
            target=cmd.target_id,
            action=str(cmd.action),
            status=str(status),
            attempts=attempts,
            detail=detail,
        )

    async def _dead_letter(self, msg: Message, exc: Exception) -> None:
        record = dead_letter(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            msg.key(),
            msg.value(),
            f"connector:{self.connector_id}:commands",
            exc,
        )
        value = self.serde.encode("DeadLetter", record, self.deadletter_topic)
        await self._producer.send(self.deadletter_topic, msg.topic().encode(), value)
        log.warning("command dead-lettered", topic=msg.topic(), offset=msg.offset(), error=str(exc))

    def status(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "group": self.group_id,
            "in_progress": len(self._tasks),
            "counts": dict(sorted(self.counts.items())),
        }
