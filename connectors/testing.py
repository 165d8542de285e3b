"""Helpers for integration tests and the benchmark: read Measurements back from a topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from edream.serde import Serde


def consume(
    bootstrap: str,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool],
    max_wait_s: float = 90.0,
) -> list[dict[str, Any]]:
    """Decoded records of ``topic`` from the beginning until ``until(records)`` holds or ``max_wait_s`` passes
    (then the caller's assertions report what is missing). Every partition is assigned directly: no group join,
    which took most of a 30-s bound on a loaded machine."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"conn-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(parts)])
    serde = Serde()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + max_wait_s
    try:
        while time.monotonic() < deadline and not until(out):
            for m in c.consume(500, 0.5):
                if m.error() is None:
                    out.append(
                        serde.decode(m.value())[1] | {"_key": m.key().decode(), "_ts": m.timestamp()[1]}
                    )
    finally:
        c.close()
    return out
