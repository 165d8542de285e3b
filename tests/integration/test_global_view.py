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
