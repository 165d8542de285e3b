"""The high watermark a stage's changelog recovery sees is the offset after the last record, also on the embedded
broker, which answers a LATEST query with the last record batch's base offset + 1."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer, TopicPartition
from quixstreams.kafka import Consumer as QuixConsumer

from edream.runtime.watermarks import WatermarkProbe

pytestmark = pytest.mark.integration


def test_the_watermark_after_a_batch_is_its_last_record_plus_one(kafka_bootstrap, unique_topic):
    topic = unique_topic("wm", 2)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 100})
    for i in range(6):  # one batch, offsets 0-5
        p.produce(topic, b"v%d" % i, key=b"k%d" % i, partition=0)
    assert p.flush(15) == 0
    p.produce(topic, b"alone", partition=1)  # a batch of one record
    assert p.flush(15) == 0
    consumer = QuixConsumer(kafka_bootstrap, "wm-test", "earliest", auto_commit_enable=False)
    try:
        answered = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        probe = WatermarkProbe(consumer, {"bootstrap.servers": kafka_bootstrap})
        print(f"the broker answers {answered} for 6 records in one batch")
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 6)
        assert consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10) == (0, 1)
        probe.close()
    finally:
        consumer.close()
