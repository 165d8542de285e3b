"""Shared pieces of the interval stage's broker tests: topics of a renamed topology, readings near the wall clock
sent to chosen partitions, the expected records from the processor on in-memory state, and a reader that
collects records by event id (checking that a replayed id always carries the same values)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from interval_stage_child import CFG

from edream.measurements import power_reading
from edream.runtime.state import MemoryState
from edream.serde import Serde
from edream.topology import load_topology
from streams.analytics.interval_processor import IntervalProcessor

PARTITIONS = 4
TOPIC_CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
MIN = 60_000
SERDE = Serde()


def window_start(now_ms: int) -> int:
    """A window start one hour before the current 15-minute window: readings from it on are recent enough to be
    valid and correctable, and their windows end at least 15 minutes before now (the wall clock closes them)."""
    return now_ms - now_ms % 900_000 - 3_600_000


@dataclass
class StageTopics:
    topology_path: Any
    raw: str
    out: str
    dlq: str


def stage_topics(renamed_topology, bootstrap: str) -> StageTopics:
    """A renamed copy of topology.yaml and its raw, interval and dead-letter topics on the broker."""
    path, rename = renamed_topology()
    load_topology(path)  # fails fast on a broken copy
    names = StageTopics(
        path,
        rename["meter.readings.raw.v1"],
        rename["meter.intervals.15m.v1"],
        rename["platform.deadletter.v1"],
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(t, PARTITIONS, 1, config=TOPIC_CONFIG) for t in (names.raw, names.out, names.dlq)]
    for fut in admin.create_topics(new).values():
        fut.result(15)
    return names


def reading(device: str, ts: int, watts: float, **kw: Any) -> dict[str, Any]:
    return power_reading(device, ts, watts, prosumer_id=f"p-{device}", connector_id="test") | kw


def produce(bootstrap: str, topic: str, items: Iterable[tuple[int, bytes, bytes]]) -> None:
    """(partition, key, value) in order."""
    p = Producer({"bootstrap.servers": bootstrap})
    for part, key, value in items:
        p.produce(topic, key=key, value=value, partition=part)
    assert p.flush(15) == 0


def encoded(topic: str, parted: Iterable[tuple[int, dict[str, Any]]]) -> list[tuple[int, bytes, bytes]]:
    return [(part, r["device_id"].encode(), SERDE.encode("Measurement", r, topic)) for part, r in parted]


def strip(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k != "computed_at"}


class Reference:
    """The processor on one in-memory state per partition, fed the valid readings in the order each partition
    holds them; ``tick`` is the wall clock reaching every partition."""

    def __init__(self) -> None:
        self.proc = IntervalProcessor(CFG)
        self.states = [MemoryState() for _ in range(PARTITIONS)]
        self.records: dict[str, dict[str, Any]] = {}

    def feed(self, parted: Iterable[tuple[int, dict[str, Any]]]) -> None:
        for part, r in parted:
            self._keep(self.proc.process(r, self.states[part]).intervals)

    def tick(self, now_ms: int) -> None:
        for s in self.states:
            self._keep(self.proc.advance_to(now_ms, s))

    def _keep(self, recs: list[dict[str, Any]]) -> None:
        for r in recs:
            self.records[r["event_id"]] = strip(r)


def collect(
    bootstrap: str, topic: str, want: set[str], timeout: float = 90.0, quiet: float = 4.0
) -> dict[str, dict[str, Any]]:
    """IntervalEnergy records of ``topic`` by event id, read from the beginning until every id of ``want`` was
    seen and nothing new arrived for ``quiet`` seconds (or ``timeout``). A repeated id must repeat its values."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "collector", "enable.auto.commit": False})
    got: dict[str, dict[str, Any]] = {}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline, last_new = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is not None and not m.error():
                r = strip(SERDE.decode(m.value(), topic)[1])
                assert m.key() == r["prosumer_id"].encode()
                prev = got.setdefault(r["event_id"], r)
                assert prev == r, f"{r['event_id']} was emitted with other values: {prev} != {r}"
                last_new = time.monotonic()
            elif want <= set(got) and time.monotonic() - last_new > quiet:
                break
    finally:
        c.close()
    return got


def letters(bootstrap: str, topic: str, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "letters", "enable.auto.commit": False})
    out: list[dict[str, Any]] = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is not None and not m.error():
                out.append(SERDE.decode(m.value(), topic)[1])
    finally:
        c.close()
    return out
