"""A registry view holds every record that was on its topic when ``start`` returned, also the later records of
the last batch, whose offsets the embedded broker's LATEST answer leaves out (``edream.runtime.watermarks``)."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer

from edream.runtime.global_view import GlobalView
from edream.runtime.watermarks import end_offset


def _produce_batches(bootstrap: str, topic: str, batches: list[int], first: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200})
    n = first
    for size in batches:
        for _ in range(size):
            producer.produce(topic, key=f"k{n}".encode(), value=f"v{n}".encode())
            n += 1
        producer.flush(15)  # one produce request (one record batch) per entry of ``batches``


def test_view_is_whole_when_start_returns_and_follows_later_records(kafka_bootstrap, unique_topic):
    topic = unique_topic("registry", partitions=2)
    _produce_batches(kafka_bootstrap, topic, [40, 25, 60])
    conf = {"bootstrap.servers": kafka_bootstrap, "group.id": "view-test"}
    probe = Consumer(conf)
    try:
        assert sum(end_offset(probe, topic, p) for p in (0, 1)) == 125
    finally:
        probe.close()
    view = GlobalView(conf, topic).start(timeout_s=30)
    try:
        assert dict(view.items()) == {f"k{i}".encode(): f"v{i}".encode() for i in range(125)}
        _produce_batches(kafka_bootstrap, topic, [3], first=125)
        deadline = time.monotonic() + 20
        while view.get(b"k127") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert view.get(b"k127") == b"v127"
    finally:
        view.stop()


def test_end_offset_of_an_empty_partition_is_zero(kafka_bootstrap, unique_topic):
    topic = unique_topic("registry")
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "view-test"})
    try:
        assert end_offset(probe, topic, 0) == 0
        assert probe.assignment() == []
    finally:
        probe.close()


def test_a_view_since_reads_only_the_recent_records(kafka_bootstrap, unique_topic):
    """``since_ms``: records stamped before the window are not read (the health board needs 10 minutes of a topic
    that grows by every stage's report every 2 s); a partition with none in the window starts at its end."""
    topic = unique_topic("health", partitions=2)
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(30):  # an hour ago: partition 0 only
        producer.produce(
            topic, key=f"old{i}".encode(), value=b"x", partition=0, timestamp=now - 3_600_000 + i
        )
    producer.flush(15)
    for i in range(5):
        producer.produce(topic, key=f"new{i}".encode(), value=b"y", partition=0, timestamp=now - 1_000 + i)
    producer.produce(topic, key=b"old-1", value=b"x", partition=1, timestamp=now - 3_600_000)
    producer.flush(15)
    conf = {"bootstrap.servers": kafka_bootstrap, "group.id": "view-test"}
    view = GlobalView(conf, topic, since_ms=600_000).start(timeout_s=30)
    try:
        assert sorted(k for k, _ in view.items()) == [f"new{i}".encode() for i in range(5)]
        producer.produce(topic, key=b"later", value=b"z", partition=1)
        producer.flush(15)
        deadline = time.monotonic() + 20
        while view.get(b"later") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert view.get(b"later") == b"z" and view.get(b"old-1") is None
    finally:
        view.stop()
