"""The latest ``FlexEnrolment`` of one prosumer, read straight from the enrolment topic (``edream terms verify``)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from edream.kafka import consumer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings


def latest_enrolment(
    settings: Settings, bootstrap: str, topic: str, prosumer_id: str, timeout_s: float = 30.0
) -> dict[str, Any] | None:
    """The last decodable ``FlexEnrolment`` with key ``prosumer_id`` on ``topic`` (read to the end of every
    partition, no consumer group join), or None. Raises TimeoutError if the end is not reached in time."""
    serde = Serde(settings)
    conf = consumer_config(settings, f"edream-verify-{uuid.uuid4().hex[:8]}", bootstrap)
    conf["enable.partition.eof"] = True
    c = Consumer(conf)
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise LookupError(f"topic {topic} not found")
        parts = set(meta.partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        wanted, found = prosumer_id.encode(), None
        deadline = time.monotonic() + timeout_s
        while parts:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(parts)} not read to the end in {timeout_s}s")
            for m in c.consume(500, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        parts.discard(m.partition())
                    continue
                if m.key() != wanted:
                    continue
                try:
                    _, rec = serde.decode(m.value(), topic)
                except DecodeError:
                    continue
                found = rec
        return found
    finally:
        c.close()
