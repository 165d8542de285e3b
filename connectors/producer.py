"""Bounded, at-least-once Kafka producer for Measurement records (confluent-kafka / librdkafka).

librdkafka buffers internally; this wrapper makes the bound explicit: at most ``max_buffered`` records may be
un-acknowledged at once (in librdkafka's queue or in flight). Over the bound new records are dropped and
counted (``dropped``); under it nothing is lost: ``message.timeout.ms=0`` keeps messages queued until the broker
returns, and a failed delivery is re-produced with the same bytes. The Kafka message timestamp is the event
time, so ack latency (device timestamp -> broker ack) comes free from the delivery report.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from connectors.models import now_ms


class Sink(Protocol):
    """Where the runtime puts Measurement records, as ``(key, record)`` pairs in batches. ``offer_batch``
    accepts a prefix of the batch and returns its length; the rest was dropped."""

    def offer_batch(self, items: Sequence[tuple[str, dict[str, Any]]]) -> int: ...


class ListSink:
    """In-memory sink for tests and dry runs."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []

    def offer_batch(self, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
        self.records.extend(items)
        return len(items)


class BufferedProducer:
    """``offer_batch(items)`` encodes the records with ``encode_batch(records) -> [bytes]`` (one call per
    batch) and produces each to ``topic`` with its key, the record's ``ts`` as the Kafka timestamp.

    Thread model: ``offer_batch`` is called from one thread (the runtime's event loop); a background thread
    serves delivery reports (``start()``/``close()``). Counters are each written by a single thread.
    """

    def __init__(
        self,
        conf: dict[str, Any],
        topic: str,
        encode_batch: Callable[[list[dict[str, Any]]], list[bytes]],
        max_buffered: int = 100_000,
        on_ack: Callable[[int], None] | None = None,
        producer: Any | None = None,
    ):
        conf = dict(conf)
        conf.setdefault("message.timeout.ms", 0)
        conf["queue.buffering.max.messages"] = max(
            int(conf.get("queue.buffering.max.messages", 0)), max_buffered + 1000
        )
        conf.setdefault("queue.buffering.max.kbytes", 1_048_576)
        self.topic = topic
        self.encode_batch = encode_batch
        self.max_buffered = max_buffered
        self.on_ack = on_ack  # called with ack latency ms (ack wall time - event ts)
        self._p = producer if producer is not None else Producer(conf)
        self.produced = 0  # written by the offering thread
        self.dropped = 0  # written by the offering thread
        self.acked = 0  # written by the delivery-report thread
        self.redelivered = 0  # written by the delivery-report thread
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def buffered(self) -> int:
        """Records offered and accepted but not yet acknowledged by the broker."""
        return self.produced - self.acked

    def offer_batch(self, items: Sequence[tuple[str, dict[str, Any]]]) -> int:
        """Produce as many of ``items`` as the bound allows (a prefix); drop and count the rest."""
        room = self.max_buffered - self.buffered
        if len(items) > room:
            self.dropped += len(items) - max(room, 0)
            items = items[: max(room, 0)]
        if not items:
            return 0
        values = self.encode_batch([record for _, record in items])
        produce, topic, on_delivery = self._p.produce, self.topic, self._on_delivery
        for (key, record), value in zip(items, values, strict=True):
            try:
                produce(topic, value, key.encode(), on_delivery=on_delivery, timestamp=record["ts"])
            except BufferError:  # librdkafka queue full (bytes bound): the slow path waits for room
                self._produce(key.encode(), value, record["ts"])
        self.produced += len(items)
        return len(items)

    def _produce(self, key: bytes, value: bytes, ts: int) -> None:
        while True:
            try:
                self._p.produce(self.topic, value, key, on_delivery=self._on_delivery, timestamp=ts)
                return
            except BufferError:  # librdkafka queue full (bytes bound): serve reports and retry
                self._p.poll(0.05)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.last_error = str(err)
            self.redelivered += 1
            _, ts = msg.timestamp()
            self._produce(msg.key(), msg.value(), ts)
            return
        self.acked += 1
        if self.on_ack is not None:
            self.on_ack(now_ms() - msg.timestamp()[1])

    # -- delivery-report thread ---------------------------------------------------------------------------
    def start(self) -> BufferedProducer:
        self._thread = threading.Thread(target=self._serve, name="producer-poll", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._p.poll(0.1)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` s for outstanding deliveries; return how many are still buffered."""
        self._p.flush(timeout)
        return self.buffered

    def close(self, timeout: float = 10.0) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.flush(timeout)
