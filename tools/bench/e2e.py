"""End-to-end benchmark: the platform's stage processes fed by N simulated 5-s meters, a share of them enrolled flex
prosumers under active orders, W workers.

``edream bench e2e --meters N --workers W --seconds S [--stages a,b] [--enrolled-share F] [--areas A]
[--deviating-share F] [--request-share F]``

1. starts an embedded broker (memory storage: the figure is the runtime's, not the object store's) and the
   topology's topics; publishes the simulated DSO on ``flex.dsos.v1`` and the enrolments of ``enrolled_share`` of
   the meters (:mod:`tools.sim.flex_bench_load`: meter ``m<i>`` of prosumer ``pid(i)``, 3 kW curtailable on a 5 kW
   baseline, dealt over ``areas`` congestion areas) on ``flex.enrolments.v1``;
2. starts W workers, each with one process per stage on the runtime (``edream stage run``), all in the stages'
   consumer groups, so W workers share every stage's partitions; ``FLEX_AUTO_ACCEPT=true``: the area desk orders
   every feasible offer at once, standing in for the DSO's acceptance;
3. produces ``meter.readings.raw.v1``: every meter once per 5 s (event time = the step's send time). Warm-up: once
   the area desk has every prosumer's metered status (its METERED outlook; at most 120 s), one signed REDUCE
   request per area for 1-minute slots covering the whole load window, asking ``request_share`` of the area's
   curtailable kW; the load window starts at the first slot and lasts ``seconds``. Enrolled meters follow the latest order revision
   they have read from ``flex.orders.v1`` (baseline less their allocation), except the deviators
   (``deviating_share`` of each area's prosumers), who keep reading their baseline: PROJECTED SHORTFALL deviations
   and re-dispatch revisions follow. After the window it keeps reading health until the stages drain or 60 s pass;
4. prints one JSON object: offered readings/s; per stage the sustained records/s over the load window (events in
   at its end minus events in at its start, over its length, summed over workers), the maximum lag (unconsumed
   messages summed over workers, sampled every 5 s), whether it kept up (lag at the end of the window below 5 s of
   offered readings, and drained afterwards), restarts of its processes; the flex outputs (offers and their
   status, orders and revisions, deviations by kind and verdict, rejections by code); the latency reading ->
   deviation p50/p99/max over PROJECTED deviations (the time this process received the deviation from the broker
   minus its ``ts``, which is the event time of the reading that triggered it, stamped when its 5-s batch began to
   be produced; FINAL verdicts carry the slot end, not a reading, and are not counted); the RSS of every process
   (broker, each stage process, this load generator) in MB, and the CPU each used over the load window (% of one
   core) with the whole machine's (% of one core, summed over cores: 200 = both of 2 cores busy); errors,
   tracebacks and warnings in the stage logs; ``python_reference_ms``: a fixed pure-Python loop timed (best of 3)
   before anything starts. Runs whose reference differs are not comparable: on a shared host it varied 1.7x within
   one hour (2026-12-06).

The temp dir, the broker and every stage process are removed on return, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from edream.kafka import apply_topics
from edream.measurements import power_reading
from edream.runtime.health_board import StageHealthBoard
from edream.runtime.stages import runtime_stages
from edream.runtime.workers import StageProcesses
from edream.serde import Serde
from edream.settings import Settings
from edream.stack import Stack
from edream.topology import load_topology
from streams.flex.enrolment import enrolment_event
from streams.flex.orders import FlexOrder
from streams.flex.requests import to_ms
from tools.sim.flex_bench_load import MS_PER_MINUTE, BenchMeters, FlexLoad, next_slot_start
from tools.sim.flex_scenario import SIM_DSO_ID, pid, sim_dso

PERIOD_MS = 5_000
READINGS = "meter.readings.raw.v1"
OFFERS, ORDERS, DEVIATIONS, REJECTIONS, STATUS = (
    "flex.offers.v1",
    "flex.orders.v1",
    "flex.deviations.v1",
    "platform.rejections.v1",
    "flex.prosumer.status.v1",
)
#: time from sending the requests to their first slot: the area desk offers and orders them within it
REQUEST_LEAD_MS = 20_000
#: warm-up limit: the area desk should have every prosumer's metered status within it (else the requests go anyway)
WARMUP_S = 120.0


class FlexOutputs:
    """Follows the flex outputs from the beginning in a thread: counts, order revisions for the meters (``orders``
    queue), and the latency of PROJECTED deviations (receive wall clock minus the triggering reading's event
    time, ms)."""

    def __init__(self, bootstrap: str, serde: Serde):
        self.serde = serde
        self.c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "e2e-bench-outputs",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        parts = []
        for topic in (OFFERS, ORDERS, DEVIATIONS, REJECTIONS, STATUS):
            meta = self.c.list_topics(topic, timeout=10).topics[topic]
            parts += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self.c.assign(parts)
        self.orders: queue.SimpleQueue[FlexOrder] = queue.SimpleQueue()
        self.offers: Counter[str] = Counter()
        self.revisions: Counter[int] = Counter()
        self.deviations: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.statuses: set[str] = set()  # prosumers with a status for the area desk
        self.latencies_ms: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="e2e-outputs", daemon=True)

    def start(self) -> FlexOutputs:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (idempotent); the counts stay readable."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(10)
        self.c.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for m in self.c.consume(1000, 0.05):
                received_ms = time.time() * 1000
                if m.error():
                    self.errors.append(str(m.error()))
                    continue
                rec = self.serde.decode(m.value(), m.topic())[1]
                if m.topic() == DEVIATIONS:
                    self.deviations[f"{rec['kind']}/{rec['verdict']}"] += 1
                    if rec["kind"] == "PROJECTED":
                        self.latencies_ms.append(received_ms - to_ms(rec["ts"]))
                elif m.topic() == ORDERS:
                    self.revisions[int(rec["revision"])] += 1
                    self.orders.put(FlexOrder.from_avro(rec))
                elif m.topic() == OFFERS:
                    self.offers[rec["status"]] += 1
                elif m.topic() == STATUS:
                    self.statuses.add(rec["prosumer_id"])
                else:
                    self.rejections[rec["code"]] += 1

    def summary(self) -> dict[str, Any]:
        lat = np.array(self.latencies_ms)
        return {
            "offers": dict(self.offers),
            "orders": self.revisions.get(1, 0),
            "order_revisions": sum(self.revisions.values()),
            "deviations": dict(self.deviations),
            "rejections": dict(self.rejections),
            "latency_reading_to_projected_deviation_ms": None
            if not len(lat)
            else {
                "n": len(lat),
                "p50": round(float(np.percentile(lat, 50))),
                "p99": round(float(np.percentile(lat, 99))),
                "max": round(float(lat.max())),
            },
            "consumer_errors": self.errors[:5],
        }


class Meters:
    """The simulated meters: one step of pre-encoded readings at a time, enrolled ones following their orders."""

    def __init__(self, load: FlexLoad, serde: Serde, producer: Producer, outputs: FlexOutputs):
        self.load, self.serde, self.producer, self.outputs = load, serde, producer, outputs
        self.devices = BenchMeters(load)
        self.sent = self.step = 0
        self.keys = [f"m{i}".encode() for i in range(load.meters)]

    def send_step(self) -> int:
        """Produce every meter's reading stamped now; the event time (UTC epoch ms)."""
        while True:
            try:
                self.devices.orders.add(self.outputs.orders.get_nowait())
            except queue.Empty:
                break
        ts = int(time.time() * 1000)
        recs = [
            power_reading(
                f"m{i}",
                ts,
                self.devices.reading_kw(i, ts) * 1000.0,
                prosumer_id=pid(i),
                seq=self.step,
                connector_id="bench",
            )
            for i in range(self.load.meters)
        ]
        for k, v in zip(self.keys, self.serde.encode_many("Measurement", recs), strict=True):
            while True:
                try:
                    self.producer.produce(READINGS, key=k, value=v, timestamp=ts)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        self.producer.poll(0)
        self.sent += self.load.meters
        self.step += 1
        return ts


def _register_flex(producer: Producer, serde: Serde, load: FlexLoad, now_ms: int) -> None:
    """The simulated DSO and the enrolled prosumers on their registry topics (read whole by the flex stages)."""
    producer.produce(
        "flex.dsos.v1", key=SIM_DSO_ID.encode(), value=serde.encode("FlexDso", sim_dso().to_avro())
    )
    for rec in load.registry().records.values():
        value = serde.encode("FlexEnrolment", enrolment_event(rec, now_ms - 86_400_000))
        producer.produce("flex.enrolments.v1", key=rec.prosumer_id.encode(), value=value)
    producer.flush(30)


def _lags(board: StageHealthBoard) -> dict[str, int]:
    """Unconsumed messages per stage, summed over its workers."""
    out: dict[str, int] = {}
    for r in board.rows():
        out[r["stage"]] = out.get(r["stage"], 0) + (r["lag"] or 0)
    return out


def _events_in(board: StageHealthBoard) -> dict[str, int]:
    """Records processed per stage, summed over its workers' processes."""
    out: dict[str, int] = {}
    for r in board.rows():
        out[r["stage"]] = out.get(r["stage"], 0) + (r["events_in"] or 0)
    return out


def _desk_ready(board: StageHealthBoard, outputs: FlexOutputs, enrolled: int, since_ms: list[int]) -> bool:
    """Whether the area desk has (nearly) every enrolled prosumer's metered status: all of them are on the status
    topic and a later health record of the ``flex`` stage shows at most a tenth of them unconsumed. ``since_ms``
    holds when the last status was seen (UTC epoch ms; filled on the first call that sees them all)."""
    if enrolled == 0:
        return True
    if len(outputs.statuses) < enrolled:
        return False
    if not since_ms:
        since_ms.append(int(time.time() * 1000))
    return any(
        r["stage"] == "flex" and (r["updated_at"] or 0) > since_ms[0] and (r["lag"] or 0) <= enrolled // 10
        for r in board.rows()
    )


def _sleep_until_next_step(tick: float) -> None:
    time.sleep(max(0.0, PERIOD_MS / 1000 - (time.time() - tick)))


def python_reference_ms() -> float:
    """The machine's speed as this benchmark sees it: ms for a fixed pure-Python loop, best of 3."""
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i * i
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 1)


def _processes(stack: Stack, pools: list[StageProcesses]) -> dict[str, int]:
    """name -> pid of the broker, this load generator and every stage process."""
    procs = {"broker": stack.broker.proc.pid} if stack.broker and stack.broker.proc else {}
    procs["load-generator"] = os.getpid()
    for w, pool in enumerate(pools):
        procs.update({f"w{w}:{c.name}": c.proc.pid for c in pool.children.values() if c.proc})
    return procs


def cpu_seconds(procs: dict[str, int]) -> dict[str, float]:
    """name -> CPU seconds (user + system) each process has used so far (gone processes are left out)."""
    out = {}
    for name, p in procs.items():
        try:
            t = psutil.Process(p).cpu_times()
        except psutil.Error:
            continue
        out[name] = t.user + t.system
    return out


def cpu_pct(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """% of one core each process used between two :func:`cpu_seconds` samples ``seconds`` apart."""
    return {n: round((after[n] - before[n]) / seconds * 100, 1) for n in after if n in before}


def _busy_s() -> float:
    t = psutil.cpu_times()
    return t.user + t.system + getattr(t, "nice", 0.0) + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


def _rss_mb(procs: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, p in procs.items():
        try:
            out[name] = round(psutil.Process(p).memory_info().rss / 2**20, 1)
        except psutil.Error:
            continue
    return out


def _log_problems(log_dirs: list[Path]) -> dict[str, dict[str, Any]]:
    """Per stage log with errors, tracebacks or warnings: how many of each, and the first error (or warning)
    line (the logs go with the temp dir)."""
    out = {}
    for d in log_dirs:
        for f in sorted(d.glob("*.log")):
            errors, warnings = [], []
            for line in f.read_text(errors="replace").splitlines():
                low = line.lower()
                if '"level": "error"' in low or '"level": "critical"' in low or line.startswith("Traceback"):
                    errors.append(line)
                elif '"level": "warning"' in low:
                    warnings.append(line)
            if errors or warnings:
                out[f"{d.parent.name}/{f.name}"] = {
                    "errors": len(errors),
                    "warnings": len(warnings),
                    "first": (errors or warnings)[0][:300],
                }
    return out


class _Terminated(Exception):
    """SIGTERM: unwind through the cleanup as Ctrl-C does."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(f"signal {signum}")


def run(
    seconds: float = 60.0,
    meters: int = 10_000,
    workers: int = 1,
    stages: str | None = None,
    enrolled_share: float = 0.1,
    areas: int = 4,
    deviating_share: float = 0.2,
    request_share: float = 0.3,
) -> dict[str, Any]:
    load = FlexLoad(meters, enrolled_share, areas, deviating_share, request_share)  # bad shares fail here
    reference_ms = python_reference_ms()
    data = Path(tempfile.mkdtemp(prefix="edream-e2e-"))
    previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
    os.environ.setdefault("EDREAM_BROKER_STORAGE", "memory")
    settings = Settings(edream_data_dir=data, edream_broker_storage="memory")
    topology = load_topology(settings.edream_topology)
    stack = Stack(settings)
    pools: list[StageProcesses] = []
    outputs: FlexOutputs | None = None
    board: StageHealthBoard | None = None
    try:
        stack.start(chain=False)
        apply_topics(stack.bootstrap, topology.topics)
        chosen = [s for s in runtime_stages(topology) if stages is None or s in stages.split(",")]
        chosen = [s for s in chosen if s not in ("anchoring", "terms")]  # no chain in this bench
        if not {"flex", "flex-prosumers"} <= set(chosen):  # no flex desk to enrol with: no prosumers
            load = dataclasses.replace(load, enrolled_share=0.0)
        serde = Serde(settings)
        producer = Producer(
            {"bootstrap.servers": stack.bootstrap, "linger.ms": 20, "compression.type": "lz4"}
        )
        _register_flex(producer, serde, load, int(time.time() * 1000))
        for w in range(workers):
            wdir = data / f"worker{w}"
            env = {
                **stack.child_env(),
                "EDREAM_DATA_DIR": str(wdir),
                "EDREAM_BROKER_STORAGE": "memory",
                "FLEX_AUTO_ACCEPT": "true",
            }
            pools.append(StageProcesses(chosen, wdir / "logs", data / "run", env).start())
        board = StageHealthBoard(settings, topology, stack.bootstrap)
        outputs = FlexOutputs(stack.bootstrap, serde).start()
        meters_ = Meters(load, serde, producer, outputs)
        time.sleep(10)  # stage processes join their groups
        board.start()
        rate = meters / (PERIOD_MS / 1000)

        # warm-up: readings until the area desk has the prosumers' metered outlook, then the requests
        warm_start, since_ms = time.time(), []
        while True:
            tick = time.time()
            meters_.send_step()
            desk_ready = _desk_ready(board, outputs, load.enrolled, since_ms)
            if desk_ready or time.time() - warm_start > WARMUP_S:
                requests_after_s = time.time() - warm_start
                break
            _sleep_until_next_step(tick)
        now = int(time.time() * 1000)
        first_slot = (
            next_slot_start(now, REQUEST_LEAD_MS) if load.enrolled else now
        )  # no prosumers: no orders
        n_slots = -(-int(seconds * 1000 + PERIOD_MS) // MS_PER_MINUTE) + 1
        for req in load.requests(first_slot, n_slots, now) if load.enrolled else ():
            producer.produce(
                "flex.requests.v1",
                key=req.request_id.encode(),
                value=serde.encode("FlexRequest", req.to_avro()),
            )
        producer.flush(30)
        _sleep_until_next_step(tick)
        while time.time() * 1000 < first_slot:
            tick = time.time()
            meters_.send_step()
            _sleep_until_next_step(tick)
        warm_up_s = time.time() - warm_start

        # the load window: orders are active from its start to past its end
        in_at_start, sent_at_start = _events_in(board), meters_.sent
        procs = _processes(stack, pools)
        cpu_at_start, busy_at_start = cpu_seconds(procs), _busy_s()
        t_start = time.time()
        max_lag: dict[str, int] = {}
        while time.time() - t_start < seconds:
            tick = time.time()
            meters_.send_step()
            for stage, lag in _lags(board).items():
                max_lag[stage] = max(max_lag.get(stage, 0), lag)
            _sleep_until_next_step(tick)
        producer.flush(30)
        load_s = time.time() - t_start
        cpu_used = cpu_pct(cpu_at_start, cpu_seconds(procs), load_s)
        system_cpu = round((_busy_s() - busy_at_start) / load_s * 100)
        in_at_end, lag_at_end = _events_in(board), _lags(board)
        sent = meters_.sent - sent_at_start

        drained_s = None
        deadline = time.time() + 60
        while time.time() < deadline:
            lags = _lags(board)
            if lags and all(v < rate for v in lags.values()):
                drained_s = round(time.time() - t_start - load_s, 1)
                break
            time.sleep(1)
        time.sleep(2)  # the last deviations reach the follower
        outputs.stop()

        per_stage: dict[str, dict[str, Any]] = {}
        for stage, n in sorted(in_at_end.items()):
            per_stage[stage] = {
                "records_per_s": round((n - in_at_start.get(stage, 0)) / load_s),
                "max_lag": max_lag.get(stage),
                "lag_at_end": lag_at_end.get(stage),
                "kept_up": lag_at_end.get(stage, 0) < 5 * rate and drained_s is not None,
                "restarts": sum(p.children[stage].restarts for p in pools if stage in p.children),
            }
        procs = _processes(stack, pools)  # restarted stage processes have new pids
        return {
            "meters": meters,
            "workers": workers,
            "enrolled_prosumers": load.enrolled,
            "areas": areas,
            "deviating_share": deviating_share,
            "warm_up": {
                "every_status_after_s": round(since_ms[0] / 1000 - warm_start, 1) if since_ms else None,
                "requests_after_s": round(requests_after_s, 1),
                "desk_had_every_status": desk_ready,
                "total_s": round(warm_up_s, 1),
            },
            "seconds": round(load_s, 1),
            "offered_readings_per_s": round(sent / load_s),
            "stages": per_stage,
            "drained_after_s": drained_s,
            "flex": outputs.summary(),
            "rss_mb": _rss_mb(procs),
            "cpu_pct": cpu_used,
            "system_cpu_pct": system_cpu,
            "python_reference_ms": reference_ms,
            "stage_log_problems": _log_problems([data / f"worker{w}" / "logs" for w in range(workers)]),
            "cores": os.cpu_count(),
        }
    finally:
        if outputs is not None:
            outputs.stop()
        if board is not None:
            board.stop()
        for pool in pools:
            pool.stop()
        stack.stop()
        shutil.rmtree(data, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_term)
