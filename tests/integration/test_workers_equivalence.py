"""N workers give the same outputs as one, also when a worker is killed with SIGKILL mid-run (issue 13).

The same fixed input (40 meters, 50 minutes of 5-s readings) goes to two copies of the topology: one is processed
by a single `edream worker`, the other by three `edream worker` processes in the stages' consumer groups, one of
which is SIGKILLed once outputs flow (its stage processes die with it; the group rebalances its partitions to
the others, which restore their state from the changelog). The set of interval records (id, version, energy,
samples) must be identical: 0 lost, 0 changed; replays may repeat a record, never alter it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from edream.measurements import power_reading
from edream.serde import Serde

pytestmark = [pytest.mark.integration, pytest.mark.slow]
METERS, PERIOD_MS, SPAN_MS = 40, 5_000, 50 * 60_000


def _worker(env: dict[str, str], data_dir, log) -> subprocess.Popen:
    env = {**env, "EDREAM_DATA_DIR": str(data_dir)}
    return subprocess.Popen(
        [sys.executable, "-c", "from edream.cli import main; main()", "worker", "--stages", "intervals"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _records(bootstrap: str, topic: str, serde: Serde) -> set[tuple]:
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"eq-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out, idle = set(), 0
        while idle < 4:
            batch = [m for m in c.consume(1000, 0.5) if not m.error()]
            idle = 0 if batch else idle + 1
            for m in batch:
                r = serde.decode(m.value(), topic)[1]
                out.add((r["event_id"], r["version"], r["import_wh"], r["export_wh"], r["samples"]))
        return out
    finally:
        c.close()


def _settled(bootstrap: str, topic: str, serde: Serde, at_least: int, timeout: float) -> set[tuple]:
    """The output set once it has ``at_least`` records and stopped growing (or the timeout passed)."""
    deadline, last = time.monotonic() + timeout, set()
    while time.monotonic() < deadline:
        got = _records(bootstrap, topic, serde)
        if len(got) >= at_least and got == last:
            return got
        last = got
        time.sleep(5)
    return last


@pytest.mark.timeout(600)
def test_three_workers_with_one_killed_match_one_worker(tmp_path, kafka_bootstrap, renamed_topology):
    serde = Serde()
    now = int(time.time() * 1000) // PERIOD_MS * PERIOD_MS - 10 * 60_000
    readings = [
        power_reading(
            f"meter-{m}", ts, 500.0 + 37.0 * m + (ts // PERIOD_MS) % 11, prosumer_id=f"p-{m}", seq=k
        )
        for k, ts in enumerate(range(now - SPAN_MS, now, PERIOD_MS))
        for m in range(METERS)
    ]
    runs = {}
    for name in ("one", "three"):
        suffix = uuid.uuid4().hex[:8]
        topology, topics = renamed_topology(suffix)
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "EDREAM_TOPOLOGY": str(topology),
            "EDREAM_APP_ID": f"eq-{name}-{suffix}",
            "KAFKA_SESSION_TIMEOUT_S": "6",
        }
        from confluent_kafka.admin import AdminClient, NewTopic

        from edream.topology import load_topology

        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        new = [
            NewTopic(t.name, t.partitions, 1, config=t.kafka_config()) for t in load_topology(topology).topics
        ]
        for fut in admin.create_topics(new).values():
            fut.result(15)
        p = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random", "linger.ms": 20})
        for rec in readings:
            p.produce(
                topics["meter.readings.raw.v1"],
                key=rec["device_id"].encode(),
                value=serde.encode("Measurement", rec),
            )
        assert p.flush(30) == 0
        runs[name] = (env, topics["meter.intervals.15m.v1"])

    log = open(tmp_path / "workers.log", "ab")  # noqa: SIM115 - shared by the worker processes
    env, out_one = runs["one"]
    single = _worker(env, tmp_path / "one", log)
    try:
        expected = _settled(kafka_bootstrap, out_one, serde, METERS * 3, 240)
    finally:
        single.send_signal(signal.SIGTERM)
        single.wait(60)
    windows = SPAN_MS // (15 * 60_000)
    assert len({r[0] for r in expected}) >= METERS * windows, "every meter's closed windows are out"

    env, out_three = runs["three"]
    workers = [_worker(env, tmp_path / f"three-{i}", log) for i in range(3)]
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _records(kafka_bootstrap, out_three, serde):
            time.sleep(1)
        os.kill(workers[0].pid, signal.SIGKILL)  # mid-run: its stage process dies with it
        got = _settled(kafka_bootstrap, out_three, serde, len(expected), 240)
    finally:
        for w in workers[1:]:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(60)
    assert got == expected, (sorted(expected - got)[:5], sorted(got - expected)[:5])
