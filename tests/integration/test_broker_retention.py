"""The embedded durable broker applies ``retention.ms``: the janitor deletes expired batch objects from the S3
store under a running Tansu, keeps each partition's newest batch, and consumers, producers and offset queries
go on as on a Kafka broker whose log start offset moved (real SeaweedFS, real Tansu, real librdkafka)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from edream.embedded.broker import EmbeddedBroker
from edream.embedded.object_store import EmbeddedObjectStore
from edream.embedded.retention import FilerBatches, RetentionJanitor

pytestmark = pytest.mark.integration


def _produce(
    bootstrap: str, topic: str, values: list[bytes], partition: int = 0, key: bytes | None = None
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "compression.type": "lz4"})
    for v in values:  # one batch (one object) each
        producer.produce(topic, v, key=key, partition=partition)
        assert producer.flush(15) == 0


def _read_all(bootstrap: str, topic: str, expect: int) -> list[tuple[int, bytes | None]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])  # from offset 0, which retention deleted
    got: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + 30
    try:
        while len(got) < expect and time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is not None and not m.error():
                got.append((m.offset(), m.value()) if m.key() is None else (m.offset(), m.key(), m.value()))
        return got
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def durable(tmp_path_factory) -> Iterator[tuple[EmbeddedBroker, FilerBatches]]:
    """A Tansu on its S3 store (one for this module; each test has its own topics), and the store's batches."""
    data = tmp_path_factory.mktemp("durable")
    store = EmbeddedObjectStore(data).start()
    broker = EmbeddedBroker(data, object_store=store)
    broker.start()
    try:
        yield broker, FilerBatches(lambda: store.filer_url, store.bucket)
    finally:
        broker.stop()
        store.stop()


def test_expired_batches_are_deleted_and_the_log_goes_on(durable):
    broker, batches = durable
    janitor = RetentionJanitor(batches)  # rounds run here, not on its thread
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = [
        NewTopic("short", 1, 1, config={"retention.ms": "3000", "cleanup.policy": "delete"}),
        NewTopic("kept", 1, 1, config={"retention.ms": "3000", "cleanup.policy": "compact"}),
        NewTopic("forever", 1, 1, config={"retention.ms": "-1", "cleanup.policy": "delete"}),
    ]
    for fut in admin.create_topics(topics).values():
        fut.result(15)
    for t in ("short", "kept", "forever"):
        _produce(broker.bootstrap, t, [b"old-0", b"old-1", b"old-2"])
    cluster = batches.clusters()[0]
    assert len(list(batches.batches(cluster, "short", 0))) == 3

    assert janitor.run_once() == 0  # nothing expired yet
    time.sleep(4.5)
    _produce(broker.bootstrap, "short", [b"new-3", b"new-4"])

    assert janitor.run_once() == 3  # the three old batches of "short"; compacted and -1 topics untouched
    assert [b.name for b in batches.batches(cluster, "short", 0)] == [
        f"{3:020}.batch",
        f"{4:020}.batch",
    ]
    assert len(list(batches.batches(cluster, "kept", 0))) == 3
    assert len(list(batches.batches(cluster, "forever", 0))) == 3

    # a consumer asking for offset 0 continues at the oldest batch left, as at a moved log start offset
    assert _read_all(broker.bootstrap, "short", 2) == [(3, b"new-3"), (4, b"new-4")]
    # produce goes on at the right offsets
    _produce(broker.bootstrap, "short", [b"new-5"])
    assert [o for o, _ in _read_all(broker.bootstrap, "short", 3)] == [3, 4, 5]
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "wm"})
    low, _ = consumer.get_watermark_offsets(TopicPartition("short", 0), timeout=10)
    consumer.close()
    assert low == 3  # the log start offset (Tansu's S3 "latest" is a batch's base + 1, retention or not)

    # everything expired: the newest batch stays, so the partition still knows where it is
    time.sleep(3.5)
    assert janitor.run_once() == 2
    assert [b.name for b in batches.batches(cluster, "short", 0)] == [f"{5:020}.batch"]
    assert _read_all(broker.bootstrap, "short", 1) == [(5, b"new-5")]


def test_superseded_batches_of_a_compacted_topic_are_deleted(durable):
    broker, batches = durable
    janitor = RetentionJanitor(batches, compact_every_s=0)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for fut in admin.create_topics([NewTopic("state", 1, 1, config={"cleanup.policy": "compact"})]).values():
        fut.result(15)
    # offsets 0..5, one batch each: a=1, b=1, a=2, (no key), a=3, b=None (a tombstone)
    _produce(broker.bootstrap, "state", [b"1"], key=b"a")
    _produce(broker.bootstrap, "state", [b"1"], key=b"b")
    _produce(broker.bootstrap, "state", [b"2"], key=b"a")
    _produce(broker.bootstrap, "state", [b"keyless"])
    _produce(broker.bootstrap, "state", [b"3"], key=b"a")
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    producer.produce("state", None, key=b"b", partition=0)
    assert producer.flush(15) == 0
    cluster = batches.clusters()[0]

    assert janitor.run_once() == 3  # a=1, b=1 and a=2: each key has a later record
    assert [int(b.name[:20]) for b in batches.batches(cluster, "state", 0)] == [3, 4, 5]
    assert janitor.run_once() == 0
    # a reader of the compacted topic still finds the latest record of every key, tombstone included
    assert _read_all(broker.bootstrap, "state", 3) == [(3, b"keyless"), (4, b"a", b"3"), (5, b"b", None)]
    _produce(broker.bootstrap, "state", [b"4"], key=b"a")
    assert janitor.run_once() == 1
    assert [int(b.name[:20]) for b in batches.batches(cluster, "state", 0)] == [3, 5, 6]
