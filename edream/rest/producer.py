"""Submissions to Kafka that answer only once the broker acknowledged them (``acks=all``): a REST client is told
202 for a record that is on the broker, 503 for one that is not (its delivery timed out or failed)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaException, Producer

from edream.kafka import producer_config
from edream.settings import Settings

#: how long a submission waits for the broker before the client is told 503 (librdkafka gives up then too)
DELIVERY_TIMEOUT_S = 10.0


class AckedProducer:
    """``await send(topic, key, value)`` -> (partition, offset) of the acknowledged record."""

    def __init__(self, settings: Settings, bootstrap: str, timeout_s: float = DELIVERY_TIMEOUT_S):
        self._conf = producer_config(
            settings, bootstrap, **{"linger.ms": 5, "message.timeout.ms": int(timeout_s * 1000)}
        )
        self._producer: Producer | None = None  # made at the first submission: most platforms never get one
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    def _client(self) -> Producer:
        with self._lock:
            if self._producer is None:
                self._producer = Producer(self._conf)
            return self._producer

    def _send(self, topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
        done: dict[str, Any] = {}

        def delivered(err: Any, msg: Any) -> None:
            done["err"], done["msg"] = err, msg

        producer = self._client()
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        deadline = time.monotonic() + self._timeout_s + 5  # librdkafka reports the timeout itself before this
        while "err" not in done and time.monotonic() < deadline:
            with self._lock:  # one thread serves the delivery callbacks at a time
                producer.poll(0.05)
        if "err" not in done:
            raise TimeoutError(f"no delivery report from the broker within {self._timeout_s:.0f} s")
        if done["err"] is not None:
            raise KafkaException(done["err"])
        return done["msg"].partition(), done["msg"].offset()

    async def send(self, topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
        return await asyncio.to_thread(self._send, topic, key, value)

    def close(self) -> None:
        """Deliver what is pending and destroy the client, before the broker stops (a live client would keep
        reconnecting and log "Connection refused" once the embedded broker is gone)."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.flush(self._timeout_s)
