"""At-least-once delivery of the suite's records to the platform's broker, as a connector does it.

A record counts as *sent* once the broker acknowledged it (``acks=all``). Records without an acknowledgement
(broker stopped, killed, or replaced by a restarted platform on a new address) stay pending and are produced
again by :meth:`Feed.deliver` (on the current address, see :meth:`Feed.connect`) until acknowledged; their ids are
deterministic, so a record the broker kept although the acknowledgement was lost is a replay, never a new record.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from confluent_kafka import KafkaException, Producer

from tools.chaos.inputs import Sent


class Feed:
    def __init__(self) -> None:
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self.pending: dict[int, Sent] = {}
        self.acked: list[Sent] = []
        self.produced = 0  # produce calls, resends included
        self._next = 0
        self._inflight: set[int] = set()  # produced on the current producer, no delivery report yet
        self._generation = 0

    def connect(self, bootstrap: str) -> None:
        """Produce to ``bootstrap`` from now on; the previous producer's unacknowledged records stay pending."""
        with self._lock:
            self._generation += 1
            self._inflight.clear()
            old, self._producer = (
                self._producer,
                Producer(
                    {
                        "bootstrap.servers": bootstrap,
                        "acks": "all",
                        "linger.ms": 20,
                        "message.timeout.ms": 30_000,  # then resent by deliver(), maybe on a new address
                        "queue.buffering.max.messages": 200_000,
                        "partitioner": "murmur2_random",
                    }
                ),
            )
        if old is not None:
            old.purge()
            old.flush(0)

    def _on_delivery(self, n: int, generation: int):
        def done(err, msg) -> None:
            with self._lock:
                if generation == self._generation:
                    self._inflight.discard(n)
                if err is None:
                    sent = self.pending.pop(n, None)
                    if sent is not None:
                        self.acked.append(sent)

        return done

    def add(self, records: list[Sent]) -> None:
        with self._lock:
            for r in records:
                self.pending[self._next] = r
                self._next += 1

    def deliver(self, timeout_s: float = 30.0) -> bool:
        """Produce every pending record not already in flight and wait up to ``timeout_s`` for acknowledgements;
        True if none is left."""
        with self._lock:
            todo = [(n, r) for n, r in self.pending.items() if n not in self._inflight]
            self._inflight.update(n for n, _ in todo)
            producer, generation = self._producer, self._generation
        if producer is None:
            return not todo
        for n, r in todo:
            while True:
                try:
                    producer.produce(
                        r.topic, r.value, key=r.key, on_delivery=self._on_delivery(n, generation)
                    )
                    self.produced += 1
                    break
                except (BufferError, KafkaException):
                    producer.poll(0.1)
            producer.poll(0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.pending:
            producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        return not self.pending

    def counts(self) -> Counter[str]:
        """Acknowledged distinct records (by id) per kind: a record acknowledged twice (e.g. the settlements of a
        window settled twice, whose ids are deterministic) is stored once, so it counts once."""
        with self._lock:
            return Counter(kind for kind, _ in {(r.kind, r.ident) for r in self.acked})

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(5)
