"""Helpers for integration tests and the benchmark: read Measurements back from a topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer

from edream.serde import Serde


def consume(
    bootstrap: str,
    topic: str,
    until: Callable[[list[dict[str, Any]]], bool],
    max_wait_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Decoded records of ``topic`` from the beginning until ``until(records)`` holds or ``max_wait_s`` passes
    (then the caller's assertions report what is missing)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"conn-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
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
