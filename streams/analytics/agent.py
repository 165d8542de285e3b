"""Kafka wiring of the interval stage: ``meter.readings.raw.v1`` in, ``meter.intervals.15m.v1`` + dead letters out.

One :class:`IntervalAgent` per consumer-group member, driven by :meth:`IntervalAgent.step` (or :meth:`run`):
consume a batch, hand each message to :class:`~streams.analytics.worker.IntervalWorker`, run the timer when
the consumer is caught up (the wall clock closes windows of silent meters only once the backlog is consumed:
ticking during catch-up would turn the whole backlog into too-late data), flush the producer, write the aggregator snapshot atomically to
``<state_dir>/intervals-<group>.pkl`` and only then commit the offsets. A crash anywhere in between replays
messages the snapshot already holds; the aggregator absorbs them (a reading at a known timestamp changes
nothing), so a restart neither loses nor double counts a reading.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from edream.kafka import consumer_config, producer_config
from edream.serde import Serde
from edream.settings import Settings
from streams.analytics.intervals import IntervalConfig
from streams.analytics.worker import DEADLETTER_TOPIC, INTERVAL_TOPIC, RAW_TOPIC, IntervalWorker
from streams.stateful_loop import caught_up

log = logging.getLogger(__name__)


class IntervalAgent:
    def __init__(
        self,
        settings: Settings,
        state_dir: Path,
        cfg: IntervalConfig | None = None,
        group_id: str | None = None,
        raw_topic: str = RAW_TOPIC,
        interval_topic: str = INTERVAL_TOPIC,
        deadletter_topic: str = DEADLETTER_TOPIC,
        now_ms: Callable[[], int] | None = None,
    ):
        self.serde = Serde(settings)
        group = group_id or f"{settings.edream_app_id}-analytics-intervals"
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file = state_dir / f"intervals-{group}.pkl"
        kw = {"interval_topic": interval_topic, "deadletter_topic": deadletter_topic}
        if self.state_file.exists():
            self.worker = IntervalWorker.restore(
                self.serde, self.state_file.read_bytes(), now_ms=now_ms, **kw
            )
            log.info("interval state restored from %s", self.state_file)
        else:
            self.worker = IntervalWorker(self.serde, cfg, now_ms=now_ms, **kw)
        self.consumer = Consumer(consumer_config(settings, group))
        self.consumer.subscribe([raw_topic])
        self.producer = Producer(producer_config(settings))

    def _caught_up(self) -> bool:
        return caught_up(self.consumer)

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(self.worker.snapshot())
        os.replace(tmp, self.state_file)

    def step(self, timeout_s: float = 1.0, max_messages: int = 5000) -> int:
        """One batch: process, timer, flush, snapshot, commit. Returns the number of messages consumed."""
        msgs = [m for m in self.consumer.consume(max_messages, timeout_s) if not m.error()]
        last: dict[tuple[str, int], int] = {}
        for m in msgs:
            for topic, key, value in self.worker.handle(
                m.value(), m.key(), m.topic(), m.partition(), m.offset()
            ):
                self.producer.produce(topic, key=key, value=value)
            last[(m.topic(), m.partition())] = m.offset()
        if not msgs and self._caught_up():  # the wall clock closes windows, never while replaying a backlog
            for topic, key, value in self.worker.tick():
                self.producer.produce(topic, key=key, value=value)
        if self.producer.flush(30) != 0:
            raise RuntimeError("producer could not deliver within 30 s; not committing")
        if last:
            self._save()
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
            )
        return len(msgs)

    def run(self, stop: Callable[[], bool] = lambda: False, idle_sleep_s: float = 0.0) -> None:
        try:
            while not stop():
                if self.step() == 0 and idle_sleep_s:
                    time.sleep(idle_sleep_s)
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.producer.flush(10)
        finally:
            self.consumer.close()
