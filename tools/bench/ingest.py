"""Ingest benchmark: simulated SMX gateways -> MQTT -> connector -> Kafka (Tansu).

Modes:

* ``mqtt`` (default, end to end): an amqtt broker and an SMX publisher fleet run in two child processes; the
  connector runs in this process. Gateways publish the T77 payload (28 mapped points each) once per
  ``interval_s``, rounds aligned to whole seconds so the second-resolution ``.SERVER_TIME`` is exact.
* ``modbus``: a pymodbus server fleet (``gateways`` = number of meters, 247 unit ids per port) in a child
  process, polled by the connector every ``interval_s`` with the KiWi register map (10 points per poll,
  Modbus timestamps are the poll time).
* ``pipeline``: no MQTT; the connector's own path (SMX parse -> Measurement -> Avro -> produce -> ack) is driven
  as fast as it goes from pre-rendered payloads, with a per-stage cost breakdown (where the time goes).
  ``processes=N`` runs N such connector processes, shard ``i/N`` of the gateways each, against one broker.

Figures: points/s acknowledged by the broker, p50/p99 delay from device timestamp to broker ack (ms), CPU
(cores used by the connector process; summed over processes) and peak RSS (MB). The broker is
KAFKA_BOOTSTRAP_SERVERS or an embedded Tansu started for the run (then its CPU is reported too).
Run ``python -m tools.bench.ingest mode=pipeline processes=2 seconds=8``; ``edream bench ingest`` runs the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from connectors.app import Connector
from connectors.config import ConnectorSettings, LoadedConfig, ModbusDevice, MqttDevice
from connectors.models import now_ms
from connectors.shard import ALL_DEVICES, Shard
from edream.embedded.broker import EmbeddedBroker
from edream.embedded.process import free_port
from edream.settings import Settings

TOPIC = "bench.ingest.readings"


def _percentile(sorted_vals: list[int], q: float) -> float | None:
    if not sorted_vals:
        return None
    return float(sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * q))])


def _broker_proc(port: int, ready: Any) -> None:
    from tools.sim.mqtt_broker import MqttBroker

    MqttBroker(port=port).start()
    ready.set()
    while True:
        time.sleep(3600)


def _publisher_proc(port: int, gateways: int, interval_s: float, stop_at: float) -> None:
    from tools.sim.smx_publisher import SmxPublisherFleet

    fleet = SmxPublisherFleet("127.0.0.1", port, gateways, interval_s)
    while time.time() < stop_at:
        nxt = (int(time.time() * 1000) // 1000 + 1) * 1000  # next whole second
        time.sleep(max(0.0, nxt / 1000 - time.time()))
        fleet.publish_round(nxt)
        rest = interval_s - (time.time() * 1000 - nxt) / 1000
        if rest > 0:
            time.sleep(max(0.0, rest - 0.01))
    fleet.stop()


class _Stats:
    def __init__(self) -> None:
        self.lat: list[int] = []
        self.measuring = False

    def on_ack(self, ms: int) -> None:
        if self.measuring:
            self.lat.append(ms)


def _cpu_s(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    t = proc.cpu_times()
    return t.user + t.system


async def _measure(
    conn: Connector,
    stats: _Stats,
    warmup: float,
    seconds: float,
    barrier: Any = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """Figures over ``seconds`` after ``warmup``; with a ``barrier`` every process starts measuring together.
    With ``broker_pid`` (the embedded broker) its CPU over the same window is reported too."""
    proc = psutil.Process()
    broker = psutil.Process(broker_pid) if broker_pid else None
    await asyncio.sleep(warmup)
    if barrier is not None:
        await asyncio.to_thread(barrier.wait, 60)
    stats.measuring = True
    a0, t0, c0, b0 = conn.producer.acked, time.perf_counter(), proc.cpu_times(), _cpu_s(broker)
    rss_peak = proc.memory_info().rss
    end = t0 + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0.2)
        rss_peak = max(rss_peak, proc.memory_info().rss)
    a1, t1, c1, b1 = conn.producer.acked, time.perf_counter(), proc.cpu_times(), _cpu_s(broker)
    stats.measuring = False
    lat = sorted(stats.lat)
    return {
        "points_per_s": round((a1 - a0) / (t1 - t0)),
        "points_acked": a1 - a0,
        "delay_p50_ms": _percentile(lat, 0.5),
        "delay_p99_ms": _percentile(lat, 0.99),
        "cpu_cores_used": round(((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0), 2),
        "rss_peak_mb": round(rss_peak / 2**20, 1),
        "dropped": conn.producer.dropped,
    } | ({"broker_cpu_cores_used": round((b1 - b0) / (t1 - t0), 2)} if broker else {})


def _settings(bootstrap: str) -> Settings:
    return Settings(kafka_bootstrap_servers=bootstrap)


def _run_mqtt(
    bootstrap: str, seconds: float, gateways: int, interval_s: float, broker_pid: int | None = None
) -> dict[str, Any]:
    port = free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    broker = ctx.Process(target=_broker_proc, args=(port, ready), daemon=True)
    broker.start()
    ready.wait(30)
    warmup = 3.0
    stop_at = time.time() + warmup + seconds + 2
    pub = ctx.Process(target=_publisher_proc, args=(port, gateways, interval_s, stop_at), daemon=True)
    dev = MqttDevice.model_validate(
        {
            "id": "smx-fleet",
            "protocol": "mqtt",
            "broker_port": port,
            "topic": "+/SMX/",
            "device_id_level": 0,
            "format": "smx",
        }
    )
    cfg = LoadedConfig(ConnectorSettings(id="bench", topic=TOPIC, max_buffered=1_000_000), [dev])
    stats = _Stats()

    async def main() -> dict[str, Any]:
        conn = Connector(cfg, _settings(bootstrap), bootstrap, on_ack=stats.on_ack)
        async with conn:
            await asyncio.sleep(1.0)  # subscribe before the fleet publishes
            pub.start()
            return await _measure(conn, stats, warmup, seconds, broker_pid=broker_pid)

    try:
        out = asyncio.run(main())
    finally:
        for p in (pub, broker):
            if p.is_alive():
                p.terminate()
            p.join(10)
    offered = gateways * 28 / interval_s
    return out | {"offered_points_per_s": round(offered)}


def _modbus_proc(n: int, ports: list[int], ready: Any) -> None:
    from tools.sim.modbus_fleet import ModbusFleet

    async def main() -> None:
        await ModbusFleet(n, ports=ports).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def _run_modbus(
    bootstrap: str, seconds: float, devices: int, interval_s: float, broker_pid: int | None = None
) -> dict[str, Any]:
    from tools.sim.modbus_fleet import UNITS_PER_PORT, profile_points

    ports = [free_port() for _ in range((devices + UNITS_PER_PORT - 1) // UNITS_PER_PORT)]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    fleet = ctx.Process(target=_modbus_proc, args=(devices, ports, ready), daemon=True)
    fleet.start()
    ready.wait(60)
    points = [p.model_dump(mode="json", exclude_none=True) for p in profile_points()]
    devs = [
        ModbusDevice.model_validate(
            {
                "id": f"kiwi-{i:05d}",
                "protocol": "modbus",
                "host": "127.0.0.1",
                "port": ports[i // UNITS_PER_PORT],
                "unit_id": i % UNITS_PER_PORT + 1,
                "poll_interval_s": interval_s,
                "registers": points,
            }
        )
        for i in range(devices)
    ]
    cfg = LoadedConfig(ConnectorSettings(id="bench", topic=TOPIC, max_buffered=1_000_000), devs)
    stats = _Stats()

    async def main() -> dict[str, Any]:
        conn = Connector(cfg, _settings(bootstrap), bootstrap, on_ack=stats.on_ack)
        async with conn:
            out = await _measure(conn, stats, 3.0, seconds, broker_pid=broker_pid)
        polls = sum(s.readings for s in conn.runtime.statuses.values()) // max(1, len(points))
        return out | {
            "polls_total": polls,
            "devices_up": sum(s.state == "up" for s in conn.runtime.statuses.values()),
        }

    try:
        out = asyncio.run(main())
    finally:
        fleet.terminate()
        fleet.join(10)
    return out | {
        "offered_points_per_s": round(devices * len(points) / interval_s),
        "points_per_poll": len(points),
    }


def _run_pipeline(
    bootstrap: str,
    seconds: float,
    gateways: int,
    shard: Shard = ALL_DEVICES,
    barrier: Any = None,
    broker_pid: int | None = None,
) -> dict[str, Any]:
    """The connector path without MQTT for the gateways ``shard`` owns; stage costs only when unsharded."""
    import json

    from connectors.mqtt import readings_from_message
    from tools.sim.profiles import Household
    from tools.sim.smx_publisher import smx_payload

    t_fixed = 1_795_000_000_000
    homes = [Household.make(i) for i in range(min(gateways, 200))]
    payloads = [json.dumps(smx_payload(h, t_fixed)).encode() for h in homes]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t_fixed / 1000)).encode()
    dev = MqttDevice.model_validate(
        {"id": "smx-fleet", "protocol": "mqtt", "topic": "+/SMX/", "device_id_level": 0, "format": "smx"}
    )
    mine = [k for k in range(gateways) if shard.owns(f"BBB{k:05d}")]
    cfg = LoadedConfig(ConnectorSettings(id="bench", topic=TOPIC, max_buffered=2_000_000), [])
    stats = _Stats()

    async def main() -> dict[str, Any]:
        conn = Connector(cfg, _settings(bootstrap), bootstrap, on_ack=stats.on_ack, shard=shard)
        stop = False

        async def drive() -> None:
            i = 0
            while not stop:
                ts = now_ms()
                sec = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000)).encode()
                batch = []
                for _ in range(50):  # as the MQTT session drains: the messages of one loop turn, one batch
                    k = mine[i % len(mine)]
                    body = payloads[k % len(payloads)].replace(stamp, sec)
                    batch.append((readings_from_message(dev, f"BBB{k:05d}/SMX/", body, ts), None))
                    i += 1
                conn.runtime.emit_batch(batch)
                # back-pressure: keep at most ~5,000 points un-acked so delay reflects a steady state
                while conn.producer.buffered > 5_000:
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0)

        async with conn:
            task = asyncio.create_task(drive())
            out = await _measure(conn, stats, 2.0, seconds, barrier, broker_pid)
            stop = True
            await task
        return out

    out = asyncio.run(main()) | {
        "gateways_in_shard": len(mine),
        "note": "delay uses second-resolution SMX timestamps (+0..1000 ms bias) in pipeline mode",
    }
    if shard != ALL_DEVICES:
        return out
    return out | _pipeline_stage_costs(payloads, dev)


def _pipeline_stage_costs(payloads: list[bytes], dev: MqttDevice) -> dict[str, float]:
    """µs per payload of 28 points for each stage of the connector path, measured without the broker."""
    from connectors import smx
    from connectors.mqtt import readings_from_message
    from connectors.producer import ListSink
    from connectors.runtime import ConnectorRuntime
    from edream.serde import Serde

    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        smx.parse_payload(payloads[i % len(payloads)], smx.MAPPED_NAMES)
    parse_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for i in range(n):
        readings_from_message(dev, f"G{i % len(payloads)}/SMX/", payloads[i % len(payloads)], 1)
    map_us = (time.perf_counter() - t0) / n * 1e6 - parse_us
    rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(id="bench"), [dev]), ListSink())
    rs = readings_from_message(dev, "G0/SMX/", payloads[0], 1)
    t0 = time.perf_counter()
    for _ in range(n // 10):
        rt.emit(rs)
    emit_us = (time.perf_counter() - t0) / (n // 10) * 1e6
    serde = Serde()
    recs = [r for _, r in rt.sink.records[:28]]  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for _ in range(n // 10):
        serde.encode_many("Measurement", recs, TOPIC)
    encode_us = (time.perf_counter() - t0) / (n // 10) * 1e6
    return {
        "stage_parse_us_per_payload": round(parse_us, 1),
        "stage_map_us_per_payload": round(map_us, 1),
        "stage_emit_us_per_payload": round(emit_us, 1),
        "stage_avro_encode_us_per_payload": round(encode_us, 1),
    }


def _shard_proc(kw: dict[str, Any], shard: Shard, barrier: Any, results: Any) -> None:
    try:
        results.put((shard.index, _run_pipeline(**kw, shard=shard, barrier=barrier)))
    except BaseException as exc:  # reported to the parent, which fails the run
        results.put((shard.index, {"error": repr(exc)}))


def _run_shards(processes: int, kw: dict[str, Any]) -> dict[str, Any]:
    """``processes`` connector processes (pipeline mode), shard i/N each, over the same gateways, measured
    over the same window; points/s and CPU summed, delay and RSS the worst process's."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=_shard_proc, args=(kw, Shard(i, processes), barrier, results), daemon=True)
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    per = dict(results.get(timeout=kw["seconds"] + 180) for _ in procs)
    for p in procs:
        p.join(30)
    failed = {i: r["error"] for i, r in per.items() if "error" in r}
    if failed:
        raise RuntimeError(f"shard process(es) failed: {failed}")
    shards = [per[i] for i in range(processes)]
    lat = [r["delay_p99_ms"] for r in shards if r["delay_p99_ms"] is not None]
    return {
        "points_per_s": sum(r["points_per_s"] for r in shards),
        "points_acked": sum(r["points_acked"] for r in shards),
        "points_per_s_per_process": [r["points_per_s"] for r in shards],
        "delay_p50_ms_per_process": [r["delay_p50_ms"] for r in shards],
        "delay_p99_ms": max(lat) if lat else None,
        "cpu_cores_used": round(sum(r["cpu_cores_used"] for r in shards), 2),
        "rss_peak_mb": max(r["rss_peak_mb"] for r in shards),
        "dropped": sum(r["dropped"] for r in shards),
    } | {k: v for k, v in shards[0].items() if k.startswith(("broker", "offered", "points_per_poll", "note"))}


def run(
    seconds: float = 5.0,
    mode: str = "mqtt",
    gateways: int = 1000,
    interval_s: float = 1.0,
    processes: int = 1,
    **_: Any,
) -> dict[str, Any]:
    """Run the benchmark; returns a flat dict of figures and the parameters used. ``processes`` > 1 (pipeline
    mode) runs that many connector processes, each ``--shard i/processes`` of the gateways."""
    if processes > 1 and mode != "pipeline":
        raise ValueError("processes > 1 is measured in mode=pipeline (one load generator per process)")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    broker = None
    broker_pid = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-ingest-")
    if not bootstrap:
        broker = EmbeddedBroker(Path(tmp.name))
        broker.start()
        bootstrap = broker.bootstrap
        broker_pid = broker.proc.pid
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        with contextlib.suppress(Exception):  # already exists on an external broker
            fut.result(15)
    try:
        if mode == "pipeline" and processes > 1:
            kw = {"bootstrap": bootstrap, "seconds": seconds, "gateways": gateways, "broker_pid": broker_pid}
            figures = _run_shards(processes, kw)
        elif mode == "pipeline":
            figures = _run_pipeline(bootstrap, seconds, gateways, broker_pid=broker_pid)
        elif mode == "modbus":
            figures = _run_modbus(bootstrap, seconds, gateways, interval_s, broker_pid)
        else:
            figures = _run_mqtt(bootstrap, seconds, gateways, interval_s, broker_pid)
    finally:
        if broker is not None:
            broker.stop()
        tmp.cleanup()
    return figures | {
        "mode": mode,
        "seconds": seconds,
        "gateways": gateways,
        "interval_s": interval_s,
        "processes": processes,
        "points_per_payload": 28,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    import json
    import sys

    kw = dict(a.split("=", 1) for a in sys.argv[1:])
    print(
        json.dumps(
            run(
                float(kw.pop("seconds", 5)),
                kw.pop("mode", "mqtt"),
                int(kw.pop("gateways", 1000)),
                float(kw.pop("interval_s", 1.0)),
                int(kw.pop("processes", 1)),
            )
        )
    )
