"""Acceptance: the interval stage killed with SIGKILL mid-run and restarted with its local state deleted recovers
its state from the changelog: replayed and repeated readings change no emitted value, corrections continue with
the next version; replaying its output into ClickHouse twice leaves one row per window (counted with FINAL).
Real broker (worker in a child process), real chDB."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from interval_stage_child import CFG
from interval_support import (
    MIN,
    PARTITIONS,
    SERDE,
    Reference,
    collect,
    encoded,
    produce,
    reading,
    stage_topics,
    window_start,
)

from edream.avro_schemas import contract
from edream.sink_writer import Positioned, SinkWriter
from edream.topology import Sink

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHILD = Path(__file__).with_name("interval_stage_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _spawn(bootstrap: str, data_dir: Path, topology: Path, app_id: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(CHILD), bootstrap, str(data_dir), str(topology), app_id], env=env, cwd=ROOT
    )


def _all(bootstrap: str, topic: str) -> list[Positioned]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "all", "enable.auto.commit": False})
    out = []
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        while (m := c.poll(2.0)) is not None:
            if not m.error():
                out.append(
                    Positioned(SERDE.decode(m.value(), topic)[1], m.topic(), m.partition(), m.offset())
                )
    finally:
        c.close()
    return out


def test_sigkill_restart_without_local_state_and_replay_into_clickhouse(
    test_settings, renamed_topology, kafka_bootstrap, chdb_client, unique_table, tmp_path
):
    topo = stage_topics(renamed_topology, kafka_bootstrap)
    t0 = window_start(int(time.time() * 1000))
    devices = [f"m{i}" for i in range(8)]
    part = {d: i % PARTITIONS for i, d in enumerate(devices)}
    phase1 = [
        (part[d], reading(d, t0 + k * MIN, 400.0 * (i + 1))) for k in range(41) for i, d in enumerate(devices)
    ]
    phase2 = [(part[d], reading(d, t0 + 20 * MIN + 30_000, 0.0)) for d in devices]  # corrections of window 2
    replays = [x for x in phase1 if x[1]["device_id"] in ("m0", "m5")] + phase2
    phase3 = [(part[d], reading(d, t0 + 35 * MIN + 30_000, 0.0)) for d in devices]  # corrections of window 3

    ref = Reference()
    ref.feed(phase1)
    now = int(time.time() * 1000)
    ref.tick(now)
    first = set(ref.records)
    ref.feed(phase2 + replays + phase3)
    ref.tick(now + CFG.settle_ms)  # the stage's ticks go on: the last corrected windows settle
    expected = ref.records
    assert len(first) == 3 * len(devices) and len(expected) == 5 * len(devices)

    data_dir, app = tmp_path / "worker", f"ivk-{uuid.uuid4().hex[:6]}"
    produce(kafka_bootstrap, topo.raw, encoded(topo.raw, phase1))
    child = _spawn(kafka_bootstrap, data_dir, topo.topology_path, app)
    try:
        assert set(collect(kafka_bootstrap, topo.out, first, quiet=1.0)) >= first
        produce(kafka_bootstrap, topo.raw, encoded(topo.raw, phase2))
        time.sleep(0.5)  # killed while (or just after) processing the corrections, before or after a commit
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    shutil.rmtree(data_dir / "state" / "intervals")  # the local RocksDB is lost with the machine

    produce(kafka_bootstrap, topo.raw, encoded(topo.raw, replays + phase3))
    child = _spawn(kafka_bootstrap, data_dir, topo.topology_path, app)
    try:
        got = collect(kafka_bootstrap, topo.out, set(expected), timeout=120)
    finally:
        child.terminate()
        child.wait(30)
    assert got == expected  # no value changed under an id, corrections continued at the next version
    assert {(r["device_id"], r["version"]) for r in got.values()} == {(d, v) for d in devices for v in (1, 2)}

    batch = _all(kafka_bootstrap, topo.out)
    table = unique_table("intervals")
    sink = Sink(
        name="intervals",
        topic=topo.out,
        table=table,
        order_by=["device_id", "interval_start"],
        version="version",
    )
    writer = SinkWriter(chdb_client, sink, contract("IntervalEnergy"))
    writer.write(batch)
    writer.write(batch)  # retried batch: dedup token
    writer.write(list(reversed(batch))[:5])  # replay batched differently: ReplacingMergeTree
    q = (
        f"SELECT device_id, count(), sum(import_wh), max(version) FROM {table} FINAL "
        "GROUP BY device_id ORDER BY device_id"
    )
    rows = chdb_client.query(q).result_rows
    latest: dict[tuple[str, int], dict] = {}
    for r in expected.values():
        key = (r["device_id"], r["interval_start"])
        if key not in latest or r["version"] > latest[key]["version"]:
            latest[key] = r
    assert [r[0] for r in rows] == devices
    for device, n, wh, version in rows:
        assert n == 3 and version == 2
        assert wh == pytest.approx(sum(r["import_wh"] for k, r in latest.items() if k[0] == device))
