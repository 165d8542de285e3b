"""Operator access to the running platform's VPP topics (used by ``edream vpp``).

The broker is the configured one (``KAFKA_BOOTSTRAP_SERVERS``) or the embedded broker of a running
``edream run`` (found through ``<EDREAM_DATA_DIR>/run.json``, :func:`edream.stack.resolve_bootstrap`); topic
names come from the loaded topology (``EDREAM_TOPOLOGY``), so a renamed topology works too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from edream.settings import Settings


class PlatformClient:
    def __init__(self, settings: Settings, bootstrap: str, topics: dict[str, str]):
        from confluent_kafka import Producer

        from edream.kafka import producer_config
        from edream.serde import Serde

        self.settings, self.bootstrap, self.topics = settings, bootstrap, topics
        self.serde = Serde(settings)
        self.producer = Producer(producer_config(settings, bootstrap))

    @classmethod
    def connect(cls, settings: Settings) -> PlatformClient:
        """Raises :class:`edream.stack.NoBroker` when no broker is configured and no platform runs."""
        from edream.stack import resolve_bootstrap
        from edream.topology import load_topology, topic_names

        return cls(
            settings, resolve_bootstrap(settings), topic_names(load_topology(settings.edream_topology))
        )

    def topic(self, canonical: str) -> str:
        return self.topics.get(canonical, canonical)

    def send(self, canonical: str, schema: str, key: str, records: list[dict[str, Any]]) -> None:
        """Produce records and wait for the broker's acknowledgement (RuntimeError after 15 s)."""
        topic = self.topic(canonical)
        for rec in records:
            self.producer.produce(topic, key=key.encode(), value=self.serde.encode(schema, rec, topic))
        if self.producer.flush(15):
            raise RuntimeError(f"{topic}: not delivered within 15 s")

    def read(
        self,
        canonical: str,
        until: Callable[[list[dict[str, Any]]], bool] | None = None,
        timeout_s: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Decodable records of the topic from the beginning: up to its current end (``until`` None), or until
        ``until(records)`` holds, following new messages; stops after ``timeout_s`` in any case."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

        from edream.kafka import client_config
        from edream.serde import DecodeError

        topic = self.topic(canonical)
        c = Consumer(
            client_config(self.bootstrap, self.settings)
            | {
                "group.id": f"edream-vpp-cli-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        out: list[dict[str, Any]] = []
        try:
            meta = c.list_topics(topic, timeout=min(timeout_s, 10.0)).topics.get(topic)
            if meta is None or meta.error is not None:
                raise RuntimeError(f"topic {topic} does not exist on {self.bootstrap}")
            parts = list(meta.partitions)
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            at_end: set[int] = set()
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if until is None and len(at_end) == len(parts):
                    break
                if until is not None and until(out):
                    break
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                    continue
                try:
                    out.append(self.serde.decode(m.value(), topic)[1])
                except DecodeError:
                    continue
            return out
        finally:
            c.close()


def latest_assets(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Registry records -> the latest record per asset id (highest ``updated_at``, later read wins ties)."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        old = out.get(r["asset_id"])
        if old is None or old["updated_at"] <= r["updated_at"]:
            out[r["asset_id"]] = r
    return out
