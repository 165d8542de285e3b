"""Interval stage over the real embedded broker: dead letters, window closing by timer, restart from snapshot."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from edream.kafka import consumer_config, producer_config
from edream.measurements import power_reading
from edream.serde import Serde
from streams.analytics.intervals import IntervalConfig
from streams.analytics.worker import IntervalWorker

pytestmark = pytest.mark.integration

T0 = 1_699_999_200_000  # multiple of 15 min
NOW = T0 + 3 * 3_600_000  # fixed "wall clock" for the validator and computed_at


def _drain(c: Consumer, n: int, timeout: float = 30.0) -> list:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    return got


def _run(worker: IntervalWorker, settings, group: str, src: str, n: int, producer: Producer, commit: bool):
    """Consume ``n`` messages, produce the worker's outputs; commit offsets after a snapshot when asked."""
    c = Consumer(consumer_config(settings, group))
    c.subscribe([src])
    try:
        msgs = _drain(c, n)
        for m in msgs:
            for topic, key, value in worker.handle(m.value(), m.key(), m.topic(), m.partition(), m.offset()):
                producer.produce(topic, key=key, value=value)
        assert producer.flush(15) == 0
        snap = worker.snapshot()
        if commit and msgs:
            last = msgs[-1]
            c.commit(offsets=[TopicPartition(src, last.partition(), last.offset() + 1)], asynchronous=False)
        return len(msgs), snap
    finally:
        c.close()


def test_intervals_dead_letters_and_restart(test_settings, unique_topic):
    src, out, dlq = unique_topic("raw"), unique_topic("intervals"), unique_topic("dlq")
    serde = Serde()
    cfg = IntervalConfig(expected_period_ms=60_000)
    # m1: 1200 W every 60 s for 40 min; m2: 600 W every 60 s for 10 min then silent
    readings = [power_reading("m1", T0 + i * 60_000, 1200.0, prosumer_id="p-m1") for i in range(41)]
    readings += [power_reading("m2", T0 + i * 60_000, 600.0, prosumer_id="p-m2") for i in range(11)]
    readings.sort(key=lambda r: r["ts"])
    values = [serde.encode("Measurement", r, src) for r in readings]
    values.insert(5, b"\x00not avro")  # undecodable
    values.insert(9, serde.encode("Measurement", dict(readings[3], unit="kW"), src))  # invalid unit
    values.insert(12, values[11])  # exact duplicate of a reading
    p = Producer(producer_config(test_settings))
    for v in values:
        p.produce(src, key=b"k", value=v)
    assert p.flush(15) == 0

    def new_worker(blob: bytes | None = None) -> IntervalWorker:
        kw = {"interval_topic": out, "deadletter_topic": dlq}
        if blob is None:
            return IntervalWorker(serde, cfg, now_ms=lambda: NOW, **kw)
        return IntervalWorker.restore(serde, blob, now_ms=lambda: NOW, **kw)

    group = f"analytics-{src}"
    w1 = new_worker()
    done, snap = _run(w1, test_settings, group, src, 30, p, commit=True)
    assert done == 30
    # the worker goes on but is "killed" before committing: its progress after the snapshot is lost
    _run(w1, test_settings, group, src, 10, p, commit=False)
    w2 = new_worker(snap)
    done2, _ = _run(w2, test_settings, group, src, len(values) - 30, p, commit=True)
    assert done2 == len(values) - 30  # resumed at the committed offset, replaying the uncommitted 10
    for topic, key, value in w2.tick(T0 + 3_600_000):  # timer closes the silent meter's and the last windows
        p.produce(topic, key=key, value=value)
    assert p.flush(15) == 0

    c = Consumer(consumer_config(test_settings, f"check-{out}"))
    c.subscribe([out, dlq])
    try:
        msgs = _drain(c, 8, timeout=20)
        msgs += _drain(c, 100, timeout=3)  # anything extra would be a defect
    finally:
        c.close()
    decoded = [(m.topic(), serde.decode(m.value(), m.topic())[1]) for m in msgs]
    dead = [r for t, r in decoded if t == dlq]
    assert sorted(r["error_type"] for r in dead) == ["decode_error", "unit_mismatch"]
    assert {bytes(r["original"]) for r in dead} >= {b"\x00not avro"}

    ivs = [r for t, r in decoded if t == out]
    by_id = {r["event_id"]: r for r in ivs}
    assert all(by_id[r["event_id"]] == r for r in ivs)  # a replay re-sends an identical record under its id
    latest = {(r["device_id"], r["interval_start"]): r for r in by_id.values()}
    assert sorted(latest) == [("m1", T0), ("m1", T0 + 900_000), ("m1", T0 + 1_800_000), ("m2", T0)]
    for ws in (T0, T0 + 900_000):
        assert latest[("m1", ws)]["import_wh"] == pytest.approx(300.0)  # 1.2 kW for 15 min
        assert latest[("m1", ws)]["completeness"] == pytest.approx(1.0)
    tail = latest[("m1", T0 + 1_800_000)]
    assert tail["import_wh"] == pytest.approx(1200 * 600 / 3_600_000 * 1000)  # 30..40 min covered
    silent = latest[("m2", T0)]
    assert silent["import_wh"] == pytest.approx(100.0) and silent["completeness"] == pytest.approx(600 / 900)
    assert all(r["version"] == 1 for r in latest.values())
