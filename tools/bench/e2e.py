"""End-to-end benchmark: the platform's stage processes fed by N simulated 5-s meters, W workers.

``edream bench e2e --meters N --workers W --seconds S [--stages a,b] [--enrolled-share F]``

1. starts an embedded broker (memory storage: the figure is the runtime's, not the object store's) and the
   topology's topics; publishes flex enrolments for ``enrolled_share`` of the meters (device ``m<i>`` of prosumer
   ``p<i>``), which the flex stage re-keys readings by (the rest are dropped at the door);
2. starts W workers, each with one process per stage on the runtime (``edream stage run``), all in the stages'
   consumer groups, so W workers share every stage's partitions;
3. produces ``meter.readings.raw.v1`` at N/5 readings/s (every meter once per 5 s, event time = send time,
   pre-encoded in batches) for ``seconds``, then keeps reading health until the stages drain or 60 s pass;
4. follows ``platform.stage.health.v1`` and prints one JSON object: offered readings/s, per stage the sustained
   records/s over the load window (events in / window), the maximum lag, whether it kept up (lag at the end of
   the load below 5 s of input and drained afterwards), the end-to-end latency reading -> deviation p50/p99
   (deviation arrival minus reading event time, when the flex stage emits deviations), and the RSS of every
   process (broker, each stage process) in MB.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from confluent_kafka import Consumer, Producer

from edream.kafka import apply_topics
from edream.measurements import power_reading
from edream.runtime.health_board import StageHealthBoard
from edream.runtime.stages import runtime_stages
from edream.runtime.workers import StageProcesses
from edream.serde import Serde
from edream.settings import Settings
from edream.stack import Stack
from edream.topology import load_topology

PERIOD_MS = 5_000
READINGS = "meter.readings.raw.v1"
DEVIATIONS = "flex.deviations.v1"


def _enrol(producer: Producer, serde: Serde, n: int, now_ms: int) -> None:
    """Enrolments of prosumers p0..p(n-1), each with meter m<i> (the flex stage's re-key table)."""
    try:
        from tools.sim.flex_portfolio import bench_enrolment
    except ImportError:  # flex not on the runtime yet: nothing to enrol
        return
    for i in range(n):
        key, record = bench_enrolment(i, now_ms)
        producer.produce("flex.enrolments.v1", key=key, value=serde.encode("FlexEnrolment", record))
    producer.flush(30)


def _readings(serde: Serde, meters: int, ts: int, step: int) -> list[tuple[bytes, bytes]]:
    recs = [
        power_reading(
            f"m{i}", ts, 500.0 + (i % 97) * 10.0, prosumer_id=f"p{i}", seq=step, connector_id="bench"
        )
        for i in range(meters)
    ]
    values = serde.encode_many("Measurement", recs)
    return [(f"m{i}".encode(), v) for i, v in enumerate(values)]


def _rss_mb(pids: list[int]) -> dict[str, float]:
    out = {}
    for pid in pids:
        try:
            p = psutil.Process(pid)
            out[f"{p.pid}:{' '.join(p.cmdline()[-2:])[:40]}"] = round(p.memory_info().rss / 2**20, 1)
        except psutil.Error:
            continue
    return out


def run(
    seconds: float = 60.0,
    meters: int = 10_000,
    workers: int = 1,
    stages: str | None = None,
    enrolled_share: float = 0.1,
) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="edream-e2e-"))
    os.environ.setdefault("EDREAM_BROKER_STORAGE", "memory")
    settings = Settings(edream_data_dir=data, edream_broker_storage="memory")
    topology = load_topology(settings.edream_topology)
    stack = Stack(settings).start(chain=False)
    pools: list[StageProcesses] = []
    try:
        apply_topics(stack.bootstrap, topology.topics)
        chosen = [s for s in runtime_stages(topology) if stages is None or s in stages.split(",")]
        chosen = [s for s in chosen if s not in ("anchoring", "terms")]  # no chain in this bench
        serde = Serde(settings)
        producer = Producer(
            {"bootstrap.servers": stack.bootstrap, "linger.ms": 20, "compression.type": "lz4"}
        )
        _enrol(producer, serde, int(meters * enrolled_share), int(time.time() * 1000))
        for w in range(workers):
            wdir = data / f"worker{w}"
            env = {**stack.child_env(), "EDREAM_DATA_DIR": str(wdir), "EDREAM_BROKER_STORAGE": "memory"}
            pools.append(StageProcesses(chosen, wdir / "logs", data / "run", env).start())
        board = StageHealthBoard(settings, topology, stack.bootstrap)
        deviations = Consumer(
            {"bootstrap.servers": stack.bootstrap, "group.id": "e2e-latency", "auto.offset.reset": "latest"}
        )
        deviations.subscribe([DEVIATIONS])
        time.sleep(10)  # stage processes join their groups
        board.start()

        rate = meters / (PERIOD_MS / 1000)
        t_start = time.time()
        sent, step, max_lag, latencies = 0, 0, {}, []
        while time.time() - t_start < seconds:
            tick = time.time()
            ts = int(tick * 1000)
            for k, v in _readings(serde, meters, ts, step):
                while True:
                    try:
                        producer.produce(READINGS, key=k, value=v, timestamp=ts)
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.poll(0)
            sent += meters
            step += 1
            for r in board.rows():
                max_lag[r["stage"]] = max(max_lag.get(r["stage"], 0), r["lag"] or 0)
            for m in deviations.consume(1000, 0.01):
                if not m.error():
                    rec = serde.decode(m.value(), DEVIATIONS)[1]
                    ts_ev = rec.get("ts")
                    if ts_ev is not None:
                        ts_ev = int(ts_ev.timestamp() * 1000) if hasattr(ts_ev, "timestamp") else int(ts_ev)
                        latencies.append(time.time() * 1000 - ts_ev)
            time.sleep(max(0.0, PERIOD_MS / 1000 - (time.time() - tick)))
        producer.flush(30)
        load_s = time.time() - t_start
        at_end = {r["stage"] + "@" + r["worker_id"]: r for r in board.rows()}
        in_at_end = {k: r["events_in"] for k, r in at_end.items()}
        lag_at_end: dict[str, int] = {}
        for r in at_end.values():
            lag_at_end[r["stage"]] = lag_at_end.get(r["stage"], 0) + (r["lag"] or 0)
        drained_s = None
        deadline = time.time() + 60
        while time.time() < deadline:
            lags: dict[str, int] = {}
            for r in board.rows():
                lags[r["stage"]] = lags.get(r["stage"], 0) + (r["lag"] or 0)
            if lags and all(v < rate for v in lags.values()):
                drained_s = round(time.time() - t_start - load_s, 1)
                break
            time.sleep(1)
        per_stage: dict[str, dict[str, Any]] = {}
        for key, n in in_at_end.items():
            stage = key.split("@")[0]
            s = per_stage.setdefault(stage, {"records_per_s": 0.0, "workers": 0})
            s["records_per_s"] += n / load_s
            s["workers"] += 1
        for stage, s in per_stage.items():
            s["records_per_s"] = round(s["records_per_s"])
            s["max_lag"] = max_lag.get(stage)
            s["kept_up"] = lag_at_end.get(stage, 0) < 5 * rate and drained_s is not None
        pids = [stack.broker.proc.pid] if stack.broker and stack.broker.proc else []
        for pool in pools:
            pids += [c.proc.pid for c in pool.children.values() if c.proc]
        lat = np.array(latencies) if latencies else None
        result = {
            "meters": meters,
            "workers": workers,
            "seconds": round(load_s, 1),
            "offered_readings_per_s": round(sent / load_s),
            "stages": per_stage,
            "drained_after_s": drained_s,
            "latency_reading_to_deviation_ms": None
            if lat is None
            else {"p50": round(float(np.percentile(lat, 50))), "p99": round(float(np.percentile(lat, 99)))},
            "rss_mb": _rss_mb(pids),
            "cores": os.cpu_count(),
        }
        deviations.close()
        board.stop()
        return result
    finally:
        for pool in pools:
            pool.stop()
        stack.stop()
        shutil.rmtree(data, ignore_errors=True)
