"""`edream replay` on the real broker: reset a group to a timestamp, the group re-reads exactly from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from edream.replay import apply, group_consumer, plan

pytestmark = pytest.mark.integration

T0 = 1_800_000_000_000


def _consume_all(bootstrap: str, group: str, topic: str, n: int) -> list[int]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    c.subscribe([topic])
    got: list[int] = []
    try:
        for _ in range(120):
            if len(got) >= n:
                break
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(int(m.value()))
        c.commit(asynchronous=False)
    finally:
        c.close()
    return sorted(got)


def test_reset_to_a_timestamp_and_reprocess(kafka_bootstrap, unique_topic):
    topic = unique_topic("replay", partitions=2)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(20):
        p.produce(
            topic, key=str(i % 2).encode(), value=str(i).encode(), timestamp=T0 + i * 1000, partition=i % 2
        )
    assert p.flush(15) == 0
    group = f"replay-{uuid.uuid4().hex[:8]}"
    assert _consume_all(kafka_bootstrap, group, topic, 20) == list(range(20))

    c = group_consumer(kafka_bootstrap, group)
    try:
        resets = plan(c, kafka_bootstrap, [topic], T0 + 12_000, T0 + 16_000)
        assert sorted((r.partition, r.committed, r.target, r.end, r.high) for r in resets) == [
            (0, 10, 6, 8, 10),  # partition 0 holds 0,2,..,18: first at/after 12 s is #12 at offset 6
            (1, 10, 6, 8, 10),  # partition 1 holds 1,3,..,19: #13 at offset 6
        ]
        assert sum(r.in_range for r in resets) == 4 and sum(r.reprocessed for r in resets) == 8
        apply(c, resets)
    finally:
        c.close()
    assert _consume_all(kafka_bootstrap, group, topic, 8) == list(range(12, 20))


def test_cli_plan_changes_nothing_and_prints_json(kafka_bootstrap, unique_topic, tmp_path):
    topic = unique_topic("replaycli")
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(5):
        p.produce(topic, value=str(i).encode(), timestamp=T0 + i * 1000)
    assert p.flush(15) == 0
    group = f"replaycli-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, EDREAM_DATA_DIR=str(tmp_path))
    args = [sys.executable, "-c", "from edream.ops_cli import app; app()"]
    out = subprocess.run(
        [*args, "plan", "--from", "2027-01-15T08:00:02Z", "--group", group, "--topic", topic],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["applied"] is False and res["start_ms"] == T0 + 2000
    assert res["resets"][0]["committed"] is None and res["resets"][0]["target"] == 2
    c = group_consumer(kafka_bootstrap, group)
    try:
        from confluent_kafka import TopicPartition

        assert c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset < 0  # plan did not commit
    finally:
        c.close()
