"""Send DeviceCommands to a connector and wait for their results (``edream connectors command``, tests)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.config import ConnectorSettings
from edream.kafka import consumer_config, producer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings


def produce_commands(
    settings: Settings, bootstrap: str, topic: str, records: Iterable[dict[str, Any]]
) -> int:
    """Produce ``DeviceCommand`` records (key device_id) and wait for the broker's acks; return how many."""
    serde = Serde(settings)
    p = Producer(producer_config(settings, bootstrap, **{"linger.ms": 0}))
    n = 0
    for rec in records:
        p.produce(topic, serde.encode("DeviceCommand", rec, topic), rec["device_id"].encode())
        n += 1
    left = p.flush(30)
    if left:
        raise RuntimeError(f"{left} command(s) not acknowledged by the broker at {bootstrap}")
    return n


def send_command(
    settings: Settings, bootstrap: str, connector: ConnectorSettings, record: dict[str, Any], wait_s: float
) -> dict[str, Any] | None:
    """Produce one command to ``connector.commands``; with ``wait_s`` > 0 return its result from
    ``connector.command_results`` (read from the end as it was before sending), or None on timeout."""
    assert connector.commands
    consumer = None
    if wait_s > 0:
        results = connector.command_results
        consumer = Consumer(consumer_config(settings, f"edream-cli-{uuid.uuid4().hex[:8]}", bootstrap))
        parts = consumer.list_topics(results, timeout=10).topics[results].partitions
        start = []
        for p in parts:
            _, high = consumer.get_watermark_offsets(TopicPartition(results, p), timeout=10)
            start.append(TopicPartition(results, p, high))
        consumer.assign(start)
    try:
        produce_commands(settings, bootstrap, connector.commands, [record])
        if consumer is None:
            return None
        serde, deadline = Serde(settings), time.monotonic() + wait_s
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            try:
                name, result = serde.decode(msg.value(), msg.topic())
            except DecodeError:
                continue
            if name == "DeviceCommandResult" and result["command_id"] == record["command_id"]:
                return result
        return None
    finally:
        if consumer is not None:
            consumer.close()
