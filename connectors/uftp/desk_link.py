"""The gateway's Kafka side: it publishes contracts (signed requests and acceptances, Rejections) and follows what
the flex desk decides (offers, orders, rejections) from the moment it starts.

Outcomes are read from the end of each topic as it was when :meth:`DeskLink.start` returned (no consumer group:
the gateway only answers messages it forwarded itself), in a daemon thread that hands each decoded record to the
callback.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from edream.serde import Serde
from streams.outputs import Out, encode_outs

log = logging.getLogger(__name__)

#: canonical topics whose records answer the DSO: offers, orders and refusals of requests/acceptances
OUTCOMES = ("flex.offers.v1", "flex.orders.v1", "platform.rejections.v1")
Outcome = Callable[[str, dict[str, Any]], None]


class DeskLink:
    """``client_conf``: confluent-kafka settings (``bootstrap.servers`` and security); ``topics``: canonical ->
    topology topic names."""

    def __init__(self, client_conf: Mapping[str, Any], serde: Serde, topics: Mapping[str, str]):
        self.serde, self.topics = serde, dict(topics)
        self.producer = Producer({**client_conf, "linger.ms": 5})
        self._conf = {**client_conf, "group.id": "edream-uftp-gateway", "enable.auto.commit": False}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, outs: list[Out]) -> None:
        """Produce and flush (the DSO is answered only once its message is on Kafka)."""
        for topic, key, value in encode_outs(self.serde, self.topics, outs):
            self.producer.produce(topic, value, key=key)
        if self.producer.flush(30) > 0:
            raise RuntimeError("Kafka did not take the gateway's records within 30 s")

    def start(self, on_outcome: Outcome) -> DeskLink:
        consumer = Consumer(self._conf)
        canonical = {self.topics.get(t, t): t for t in OUTCOMES}
        parts = []
        for name in canonical:  # each partition from its end now: outcomes from here on are followed
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                end = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                parts.append(TopicPartition(name, p, end))
        consumer.assign(parts)
        self._thread = threading.Thread(
            target=self._follow, args=(consumer, canonical, on_outcome), daemon=True, name="uftp-outcomes"
        )
        self._thread.start()
        return self

    def _follow(self, consumer: Consumer, canonical: dict[str, str], on_outcome: Outcome) -> None:
        try:
            while not self._stop.is_set():
                for m in consumer.consume(500, 0.2):
                    if m.error():
                        continue
                    try:
                        _, rec = self.serde.decode(m.value(), m.topic())
                        on_outcome(canonical[m.topic()], rec)
                    except Exception:  # noqa: BLE001 - one bad outcome must not stop the gateway's replies
                        log.exception("uftp gateway: outcome on %s not handled", m.topic())
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.producer.flush(10)
