"""Benchmark of the interval stage: the processor alone and through the runtime on the embedded broker.

1. ``processor``: :class:`~streams.analytics.interval_stage.IntervalStage` (decode, validate, state, encode) on
   :class:`~edream.runtime.state.MemoryState` over pre-encoded 5-s readings of a fleet, readings/s;
2. per-event cost at 1,000 and 100,000 meters (the bar: the cost at 100,000 within 1.5x of the cost at 1,000, so
   state size does not drive per-event cost): the cost of a reading on a fleet whose every meter has state, plus
   the cost of closing a window (by a tick) spread over the 180 readings of a 5-s meter's window;
3. ``runtime``: one worker (:class:`~edream.runtime.supervisor.StageSupervisor`) on a fresh embedded broker, 4
   partitions, RocksDB state and changelog: readings/s from the first to the last input consumed.

``edream bench intervals`` prints one JSON object.
"""

from __future__ import annotations

import gc
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from edream.measurements import power_reading
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.analytics.interval_stage import IntervalStage

PERIOD_MS = 5000
T0 = (int(time.time() * 1000) // 900_000) * 900_000 - 2 * 900_000  # two windows ago: valid, closable


def _encoded(serde: Serde, meters: int, steps: range, topic: str = "raw") -> list[bytes]:
    out = []
    for step in steps:
        for m in range(meters):
            ts = T0 + step * PERIOD_MS + (m * 7) % PERIOD_MS
            r = power_reading(f"m{m}", ts, 500.0 + (m + step) % 97 * 10.0, prosumer_id=f"p{m}")
            out.append(serde.encode("Measurement", r, topic))
    return out


def _feed(stage: IntervalStage, state: MemoryState, values: list[bytes]) -> float:
    """Seconds to process ``values``."""
    t = time.perf_counter()
    for i, v in enumerate(values):
        stage.on_record(Record("raw", 0, i, None, v, 0), state)
    return time.perf_counter() - t


def per_event_us(meters: int, measured: int = 60_000) -> tuple[float, float]:
    """(us per reading, us per closed window) on a fleet of ``meters``: every meter first gets 3 readings (its
    state exists), then ``measured`` readings are timed, then a tick closes every meter's window."""
    serde = Serde()
    stage, state = IntervalStage(serde, "out"), MemoryState()
    warm = 3
    steps = max(1, -(-measured // meters))
    _feed(stage, state, _encoded(serde, meters, range(warm)))
    values = _encoded(serde, meters, range(warm, warm + steps))[:measured]
    gc.collect()
    per_reading = _feed(stage, state, values) / len(values) * 1e6
    t = time.perf_counter()
    closed = stage.on_tick(T0 + 900_000 + 30_000, 0, state)
    per_window = (time.perf_counter() - t) / max(1, len(closed)) * 1e6
    assert len(closed) == meters, (len(closed), meters)
    return per_reading, per_window


def processor_rate(seconds: float, meters: int = 1000) -> float:
    serde = Serde()
    stage, state = IntervalStage(serde, "out"), MemoryState()
    values = _encoded(serde, meters, range(int(max(1.0, seconds) * 40_000 / meters) + 1))
    return len(values) / _feed(stage, state, values)


def runtime_rate(n: int = 100_000, meters: int = 5000, timeout_s: float = 180.0) -> dict[str, Any]:
    """One worker on a fresh embedded broker: readings/s over ``n`` readings produced before it starts."""
    from edream.embedded.broker import EmbeddedBroker
    from edream.paths import TOPOLOGY_FILE
    from edream.runtime.supervisor import StageSupervisor
    from edream.settings import Settings
    from edream.topology import load_topology
    from streams.agents.intervals import stage

    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(Path(tmp))
        broker.start()
        try:
            settings = Settings(kafka_bootstrap_servers=broker.bootstrap, edream_data_dir=Path(tmp) / "data")
            spec = stage(
                settings, load_topology(TOPOLOGY_FILE)
            )  # the platform's stage, as `edream run` runs it
            (raw,), dlq = spec.inputs, "platform.deadletter.v1"
            cfg = {"retention.ms": "3600000", "cleanup.policy": "delete"}
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            for fut in admin.create_topics(
                [NewTopic(t, 4, 1, config=cfg) for t in (raw, *spec.outputs, dlq)]
            ).values():
                fut.result(15)
            serde = Serde()
            values = _encoded(serde, meters, range(-(-n // meters)), raw)[:n]
            p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 50, "compression.type": "lz4"})
            for i, v in enumerate(values):
                p.produce(raw, key=f"m{i % meters}".encode(), value=v)
                if i % 10_000 == 0:
                    p.poll(0)
            p.flush(60)
            sup = StageSupervisor(spec, settings, dlq, None, 4, handle_signals=False)
            thread = threading.Thread(target=sup.run, daemon=True)
            thread.start()
            first = last = None
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and sup.health.events_in < n:
                if first is None and sup.health.events_in:
                    first = time.monotonic()
                time.sleep(0.05)
            last = time.monotonic()
            done = sup.health.events_in
            sup.stop()
            thread.join(30)
        finally:
            broker.stop()
    return {
        "runtime_readings": done,
        "runtime_readings_per_s": round(done / (last - first)) if first and last > first else 0,
        "runtime_dead_letters": sup.health.dead_letters,
        "runtime_intervals_out": sup.health.events_out,
    }


def run(seconds: float = 5.0, **_: Any) -> dict[str, Any]:
    (small, small_close), (big, big_close) = per_event_us(1_000), per_event_us(100_000)
    readings_per_window = 900_000 // PERIOD_MS
    out = {
        "benchmark": "intervals",
        "processor_readings_per_s": round(processor_rate(seconds)),
        "per_reading_us_1k_meters": round(small, 2),
        "per_reading_us_100k_meters": round(big, 2),
        "per_closed_window_us_1k_meters": round(small_close, 2),
        "per_closed_window_us_100k_meters": round(big_close, 2),
        "per_event_us_1k_meters": round(small + small_close / readings_per_window, 2),
        "per_event_us_100k_meters": round(big + big_close / readings_per_window, 2),
    }
    out["cost_ratio_100k_vs_1k"] = round(out["per_event_us_100k_meters"] / out["per_event_us_1k_meters"], 3)
    return out | runtime_rate()
