"""Acceptance: the interval agent killed mid-run and restarted loses nothing, and replaying its output into
ClickHouse twice leaves the same rows (counted with FINAL). Real broker, real chDB."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer

from edream.avro_schemas import contract
from edream.kafka import consumer_config, producer_config
from edream.measurements import power_reading
from edream.serde import Serde
from edream.sink_writer import Positioned, SinkWriter
from edream.topology import Sink
from streams.analytics.agent import IntervalAgent
from streams.analytics.intervals import IntervalConfig

pytestmark = pytest.mark.integration

T0 = 1_699_999_200_000
NOW = T0 + 4 * 3_600_000  # wall clock of the agents: every window of the input has passed


class Crash(Exception):
    pass


class CrashOnSecondCommit:
    """Consumer proxy: the worker dies after producing and snapshotting its 2nd batch, before committing it."""

    def __init__(self, consumer):
        self._c, self.commits = consumer, 0

    def __getattr__(self, name):
        return getattr(self._c, name)

    def commit(self, *args, **kwargs):
        self.commits += 1
        if self.commits == 2:
            raise Crash
        return self._c.commit(*args, **kwargs)


def test_kill_restart_and_replay_into_clickhouse(
    test_settings, unique_topic, chdb_client, unique_table, tmp_path
):
    src, out, dlq = unique_topic("raw", partitions=2), unique_topic("intervals"), unique_topic("dlq")
    serde = Serde()
    devices = [f"m{i}" for i in range(4)]
    readings = [
        power_reading(d, T0 + k * 60_000, 400.0 * (i + 1), prosumer_id=f"p-{d}")
        for k in range(60)
        for i, d in enumerate(devices)
    ]
    p = Producer(producer_config(test_settings))
    for r in readings:
        p.produce(src, key=r["device_id"].encode(), value=serde.encode("Measurement", r, src))
    assert p.flush(15) == 0

    cfg = IntervalConfig(expected_period_ms=60_000)
    kw = dict(
        cfg=cfg,
        group_id=f"g-{src}",
        raw_topic=src,
        interval_topic=out,
        deadletter_topic=dlq,
        now_ms=lambda: NOW,
    )
    a = IntervalAgent(test_settings, tmp_path, **kw)
    a.consumer = CrashOnSecondCommit(a.consumer)
    with pytest.raises(Crash):
        for _ in range(20):
            a.step(timeout_s=2.0, max_messages=40)
    a.consumer.close()
    a.producer.flush(5)
    del a  # the crashed worker's clients are gone before the restart

    b = IntervalAgent(test_settings, tmp_path, **kw)  # restores the snapshot, resumes at the committed offset
    consumed, idle, deadline = 0, 0, time.monotonic() + 60
    while idle < 2 and time.monotonic() < deadline:
        n = b.step(timeout_s=1.0, max_messages=500)
        consumed += n
        idle = idle + 1 if n == 0 and consumed else 0
    b.close()
    # resumed at the first batch's commit: the crashed 2nd batch is replayed, nothing before it
    assert len(readings) - 40 <= consumed < len(readings)

    c = Consumer(consumer_config(test_settings, f"check-{out}"))
    c.subscribe([out])
    msgs, deadline = [], time.monotonic() + 20
    while time.monotonic() < deadline and len(msgs) < 16:
        m = c.poll(0.5)
        if m is not None and not m.error():
            msgs.append(m)
    while (m := c.poll(2.0)) is not None:
        msgs.append(m)
    c.close()
    batch = [Positioned(serde.decode(m.value(), out)[1], m.topic(), m.partition(), m.offset()) for m in msgs]

    table = unique_table("intervals")
    sink = Sink(
        name="intervals", topic=out, table=table, order_by=["device_id", "interval_start"], version="version"
    )
    writer = SinkWriter(chdb_client, sink, contract("IntervalEnergy"))
    writer.write(batch)
    writer.write(batch)  # retried batch: dedup token
    writer.write(list(reversed(batch))[:5])  # replay batched differently: ReplacingMergeTree
    q = f"SELECT device_id, count(), sum(import_wh), min(completeness) FROM {table} FINAL GROUP BY device_id ORDER BY device_id"
    rows = chdb_client.query(q).result_rows
    # 60 one-minute readings per meter: windows 0-15, 15-30, 30-45 min full, 45-60 min covered up to 59 min
    assert [r[0] for r in rows] == devices
    for i, (_, n, wh, _) in enumerate(rows):
        assert n == 4
        assert wh == pytest.approx(400.0 * (i + 1) * 59 / 60)  # kW * h: nothing lost, nothing doubled
    assert all(r[3] == pytest.approx(840 / 900) for r in rows)  # the last window is the least complete
