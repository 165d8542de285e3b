"""A generic at-least-once confluent-kafka loop around an engine-independent processor with snapshot state.

Each :meth:`StatefulLoop.step`: consume a batch and hand each message to ``processor.handle``; when nothing
arrived, or at least every ``tick_every_ms`` while messages keep arriving, and the consumer is caught up,
``processor.tick(now_ms)`` (the wall clock may only advance a processor once the backlog is consumed, else a
replay turns into "too late"; a steady trickle of input must not starve the timers); produce the outputs, flush, write
``processor.snapshot()`` atomically to ``state_file`` and only then commit the offsets. A crash in between
replays messages the snapshot may already hold, so processors must absorb replays (deterministic ids, latest
version wins). On start the processor is restored from ``state_file`` if it exists. Topics listed in
``replay_from_start`` (compacted registries) are read from the beginning on every partition assignment, so the
registry is complete even when the state file was lost but the group's offsets were not. A processor that
raises :class:`~edream.serde.DecodeError` for a message gets it dead-lettered (original bytes, position and
reason) to ``deadletter_topic`` when one is configured, else it is logged and skipped.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, Producer, TopicPartition

from edream.kafka import consumer_config, producer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams.deadletter import dead_letter
from streams.outputs import Emit

log = logging.getLogger(__name__)


class Processor(Protocol):
    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]: ...

    def tick(self, now_ms: int) -> list[Emit]: ...

    def snapshot(self) -> bytes: ...


def caught_up(consumer: Consumer, slack: int = 0) -> bool:
    """True when partitions are assigned and every one is read up to its high watermark, or to within ``slack``
    messages of it (for high-rate inputs such as 5-s readings, where new messages arrive between every fetch and
    this check, so a strict check would starve the timers)."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in consumer.position(assigned):
        lo, hi = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2.0)
        if tp.offset < 0:
            if hi - lo > slack:
                return False
        elif hi - tp.offset > slack:
            return False
    return True


def save_atomically(path: Path, blob: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class LoopConfig:
    """Where a loop reads, which group it joins and where its state lives."""

    settings: Settings
    bootstrap: str
    group_id: str
    inputs: list[str]
    state_file: Path
    replay_from_start: tuple[str, ...] = ()
    tick_every_ms: int = 1000
    consumer_overrides: dict[str, Any] = field(default_factory=dict)
    deadletter_topic: str | None = None
    caught_up_slack: int = 0


class StatefulLoop:
    def __init__(
        self,
        cfg: LoopConfig,
        make: Callable[[bytes | None], Processor],
        clock: Callable[[], int] = wall_clock_ms,
    ):
        self.cfg, self.clock = cfg, clock
        cfg.state_file.parent.mkdir(parents=True, exist_ok=True)
        blob = cfg.state_file.read_bytes() if cfg.state_file.exists() else None
        self.processor = make(blob)
        if blob is not None:
            log.info("%s: state restored from %s", cfg.group_id, cfg.state_file)
        self.consumer = Consumer(
            consumer_config(cfg.settings, cfg.group_id, cfg.bootstrap, **cfg.consumer_overrides)
        )
        self.consumer.subscribe(cfg.inputs, on_assign=self._on_assign)
        self.producer = Producer(producer_config(cfg.settings, cfg.bootstrap))
        self.handled = 0
        self._last_tick = 0
        self._serde = Serde(cfg.settings)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if tp.topic in self.cfg.replay_from_start:
                tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)

    def step(self, timeout_s: float = 1.0, max_messages: int = 5000) -> int:
        """One batch: handle, tick when idle, flush, snapshot, commit. Returns the number of messages consumed."""
        msgs: list[Message] = [m for m in self.consumer.consume(max_messages, timeout_s) if not m.error()]
        last: dict[tuple[str, int], int] = {}
        for m in msgs:
            try:
                self._produce(self.processor.handle(m.topic(), m.key(), m.value(), m.timestamp()[1]))
            except DecodeError as exc:
                self._dead_letter(m, exc)
            last[(m.topic(), m.partition())] = m.offset()
        ticked = False
        now = self.clock()
        due = not msgs or now - self._last_tick >= self.cfg.tick_every_ms
        if due and caught_up(self.consumer, self.cfg.caught_up_slack):
            self._last_tick = now
            ticked = bool(self._produce(self.processor.tick(now)))
        if self.producer.flush(30) != 0:
            raise RuntimeError("producer could not deliver within 30 s; not committing")
        if last or ticked:
            save_atomically(self.cfg.state_file, self.processor.snapshot())
        if last:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
            )
        self.handled += len(msgs)
        return len(msgs)

    def _dead_letter(self, m: Message, exc: DecodeError) -> None:
        topic = self.cfg.deadletter_topic
        log.warning(
            "%s: undecodable message %s/%d/%d: %s",
            self.cfg.group_id,
            m.topic(),
            m.partition(),
            m.offset(),
            exc,
        )
        if topic is None:
            return
        rec = dead_letter(m.topic(), m.partition(), m.offset(), m.key(), m.value(), self.cfg.group_id, exc)
        self.producer.produce(
            topic, key=m.topic().encode(), value=self._serde.encode("DeadLetter", rec, topic)
        )

    def _produce(self, out: list[Emit]) -> int:
        for topic, key, value in out:
            self.producer.produce(topic, key=key, value=value)
        self.producer.poll(0)
        return len(out)

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()
