"""A compacted registry topic, read whole by this process and followed: the latest value per key.

For small, slowly changing reference data every partition of a stage needs (enrolled prosumers, market
participants, VPP assets). :meth:`GlobalView.start` blocks until the view holds everything that was on the topic
when it started, so a stage never judges a record against a half-read registry; afterwards a daemon thread
follows new records. A tombstone (value None) removes the key. No consumer group: every worker reads it all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from edream.runtime.watermarks import end_offset, offset_since

log = logging.getLogger(__name__)


class GlobalView:
    def __init__(self, consumer_conf: dict, topic: str, since_ms: int | None = None):
        """``since_ms``: read only the records of the last ``since_ms`` ms (by record timestamp) when starting, for a
        reader to whom older ones are of no use; None: the whole topic."""
        self.topic = topic
        self.since_ms = since_ms
        self._conf = {**consumer_conf, "enable.auto.commit": False, "enable.partition.eof": False}
        self._data: dict[bytes, bytes] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.version = 0

    def start(self, timeout_s: float = 60.0) -> GlobalView:
        consumer = Consumer(self._conf)
        try:
            self._read_to_end(consumer, timeout_s)
        except BaseException:  # a broker error or timeout on the way must not leak the consumer
            consumer.close()
            raise
        self._thread = threading.Thread(
            target=self._follow, args=(consumer,), daemon=True, name=f"view-{self.topic}"
        )
        self._thread.start()
        return self

    def _read_to_end(self, consumer: Consumer, timeout_s: float) -> None:
        md = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if md.error is not None:
            raise RuntimeError(f"registry topic {self.topic}: {md.error}")
        ends = {p: end_offset(consumer, self.topic, p) for p in md.partitions}
        firsts = self._first_offsets(consumer, ends)
        consumer.assign([TopicPartition(self.topic, p, firsts[p]) for p in ends])
        deadline = time.monotonic() + timeout_s
        read = {p: max(firsts[p], 0) for p in ends}
        while any(read[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry topic {self.topic} not read to its end in {timeout_s:.0f}s")
            for m in consumer.consume(1000, 0.5):
                if not m.error():
                    self._apply(m.key(), m.value())
                    read[m.partition()] = m.offset() + 1

    def _first_offsets(self, consumer: Consumer, ends: dict[int, int]) -> dict[int, int]:
        """Where reading starts per partition: the beginning, or the first record of the last ``since_ms``."""
        if self.since_ms is None:
            return dict.fromkeys(ends, OFFSET_BEGINNING)
        at = int(time.time() * 1000) - self.since_ms
        return {p: offset_since(consumer, self.topic, p, at, end) for p, end in ends.items()}

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        with self._lock:
            if value is None:
                self._data.pop(key, None)
            else:
                self._data[key] = value
            self.version += 1

    def _follow(self, consumer: Consumer) -> None:
        try:
            while not self._stop.is_set():
                try:
                    for m in consumer.consume(1000, 0.5):
                        if not m.error():
                            self._apply(m.key(), m.value())
                except Exception as exc:  # noqa: BLE001 - broker away: keep the last known registry
                    log.warning("view %s: %s", self.topic, exc)
                    self._stop.wait(1.0)
        finally:
            consumer.close()

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        with self._lock:
            return list(self._data.items())

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
