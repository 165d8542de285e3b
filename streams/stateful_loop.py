"""A generic at-least-once confluent-kafka loop around an engine-independent processor with snapshot state.

Each :meth:`StatefulLoop.step`: consume a batch and hand each message to ``processor.handle``; when nothing
arrived and the consumer is caught up, ``processor.tick(now_ms)`` (the wall clock may only advance a processor
once the backlog is consumed, else a replay turns into "too late"); produce the outputs, flush, write
``processor.snapshot()`` atomically to ``state_file`` and only then commit the offsets. A crash in between
replays messages the snapshot may already hold, so processors must absorb replays (deterministic ids, latest
version wins). On start the processor is restored from ``state_file`` if it exists.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from edream.kafka import consumer_config, producer_config
from edream.settings import Settings

log = logging.getLogger(__name__)

Emit = tuple[str, bytes, bytes]  # (topic, key, value)


class Processor(Protocol):
    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]: ...

    def tick(self, now_ms: int) -> list[Emit]: ...

    def snapshot(self) -> bytes: ...


def caught_up(consumer: Consumer) -> bool:
    """True when partitions are assigned and every one is read up to its high watermark."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    for tp in consumer.position(assigned):
        lo, hi = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2.0)
        if not (tp.offset >= hi or (tp.offset < 0 and lo == hi)):
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
        self.consumer = Consumer(consumer_config(cfg.settings, cfg.group_id, cfg.bootstrap))
        self.consumer.subscribe(cfg.inputs)
        self.producer = Producer(producer_config(cfg.settings, cfg.bootstrap))
        self.handled = 0

    def step(self, timeout_s: float = 1.0, max_messages: int = 5000) -> int:
        """One batch: handle, tick when idle, flush, snapshot, commit. Returns the number of messages consumed."""
        msgs: list[Message] = [m for m in self.consumer.consume(max_messages, timeout_s) if not m.error()]
        last: dict[tuple[str, int], int] = {}
        for m in msgs:
            self._produce(self.processor.handle(m.topic(), m.key(), m.value(), m.timestamp()[1]))
            last[(m.topic(), m.partition())] = m.offset()
        ticked = False
        if not msgs and caught_up(self.consumer):
            ticked = bool(self._produce(self.processor.tick(self.clock())))
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
