"""Kafka client configuration and topic management (confluent-kafka / librdkafka).

Every client config carries the security settings of :mod:`edream.kafka_security` (SASL/TLS from the environment).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from edream.kafka_security import KafkaSecurity
from edream.settings import Settings, load_settings
from edream.topology import Topic


def client_config(bootstrap: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """``bootstrap.servers`` plus the security properties of ``settings`` (default: the environment's), for
    admin clients and throw-away consumers; raises KafkaSecurityError on inconsistent security settings."""
    settings = settings or load_settings()
    return {
        "bootstrap.servers": bootstrap or settings.kafka_bootstrap_servers,
        **KafkaSecurity.from_settings(settings).librdkafka(),
    }


def producer_config(settings: Settings, bootstrap: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Batching, at-least-once producer. No idempotence: the embedded broker does not support it, and every
    consumer de-duplicates on deterministic event ids instead."""
    conf: dict[str, Any] = {
        **client_config(bootstrap, settings),
        "enable.idempotence": False,
        # Java clients', Quix's and aiokafka's partitioner: a key lands on the same partition whichever producer
        # (connector, stage, internal repartition topic) wrote it, so co-partitioned inputs meet in one partition
        "partitioner": "murmur2_random",
        "acks": "all",
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "compression.type": "lz4",
        "message.timeout.ms": 0,  # never expire buffered messages: retried until the broker is back
        "queue.buffering.max.messages": 500_000,
    }
    conf.update(overrides)
    return conf


def consumer_config(
    settings: Settings, group_id: str, bootstrap: str | None = None, **overrides: Any
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        **client_config(bootstrap, settings),
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": int(settings.kafka_session_timeout_s * 1000),
        "heartbeat.interval.ms": 1000,
    }
    conf.update(overrides)
    return conf


@dataclass
class TopicsDiff:
    """What ``apply_topics`` did or found: created, already fine, and existing topics that differ."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    differs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.created)

    def lines(self) -> list[str]:
        out = [f"+ {t} (created)" for t in self.created]
        for t, diffs in self.differs.items():
            out += [f"~ {t}: {d}" for d in diffs]
        if not self.created and not self.differs:
            out.append(f"= no change ({len(self.unchanged)} topics up to date)")
        return out


def apply_topics(
    bootstrap: str, topics: list[Topic], timeout: float = 15.0, settings: Settings | None = None
) -> TopicsDiff:
    """Create missing topics (idempotent); report existing ones whose partitions or config differ.

    Existing topics are never altered automatically: a partition or policy change is an operator decision.
    """
    admin = AdminClient(client_config(bootstrap, settings))
    existing = admin.list_topics(timeout=timeout).topics
    diff = TopicsDiff()
    missing = [t for t in topics if t.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, t.partitions, t.replication, config=t.kafka_config()) for t in missing],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            fut.result(timeout)
            diff.created.append(name)
    present = [t for t in topics if t.name in existing]
    configs: dict[str, dict[str, str]] = {}
    if present:
        res = admin.describe_configs([ConfigResource("topic", t.name) for t in present])
        for resource, fut in res.items():
            try:
                configs[resource.name] = {k: v.value for k, v in fut.result(timeout).items()}
            except Exception:  # noqa: BLE001 - a broker that cannot describe configs still gets partition checks
                configs[resource.name] = {}
    for t in present:
        diffs = []
        have = len(existing[t.name].partitions)
        if have != t.partitions:
            diffs.append(f"partitions {have} on broker, {t.partitions} in topology")
        for k, want in t.kafka_config().items():
            got = configs.get(t.name, {}).get(k)
            if got is not None and got != want:
                diffs.append(f"{k} {got} on broker, {want} in topology")
        if diffs:
            diff.differs[t.name] = diffs
        else:
            diff.unchanged.append(t.name)
    return diff
