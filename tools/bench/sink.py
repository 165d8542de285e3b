"""ClickHouse sink throughput: decoded Measurement records into chDB through :class:`edream.sink_writer.SinkWriter`.

For each batch size (default 1k, 10k, 50k rows) batches of distinct readings (deterministic ids, offsets as a
real consumer would give them) are written for ``seconds`` into a fresh ReplacingMergeTree table built from the
``measurements`` sink of topology.yaml. Reports rows/s, per-batch write latency p50/p99 (ms), peak traced Python
memory per case and the process's peak RSS. Runs on an embedded chDB in a temporary data dir unless
``CLICKHOUSE_DSN`` points elsewhere. Goal: 200,000 rows/s.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edream.avro_schemas import contract
from edream.clickhouse import get_client
from edream.settings import load_settings
from edream.sink_writer import Positioned, SinkWriter
from edream.topology import load_topology

T0 = 1_795_440_000_000  # 2026-11-23T12:00Z
TOPIC = "meter.readings.raw.v1"


def _batch(start: int, n: int) -> list[Positioned]:
    out = []
    for i in range(start, start + n):
        dev = i % 1000
        ts = T0 + (i // 1000) * 5000
        rec = {
            "event_id": f"bench/meter-{dev}/P_ACTIVE/TOTAL/{ts}",
            "device_id": f"meter-{dev:04d}",
            "prosumer_id": f"prosumer-{dev:04d}",
            "site_id": "bench",
            "quantity": "P_ACTIVE",
            "phase": "TOTAL",
            "value": float(1000 + i % 3000),
            "unit": "W",
            "obis_code": "1-0:1.7.0",
            "quality": "GOOD",
            "source_protocol": "SIMULATOR",
            "connector_id": "bench",
            "ts": ts,
            "ts_source": "DEVICE",
            "seq": i,
            "ingest_ts": ts + 40,
        }
        out.append(Positioned(rec, TOPIC, dev % 4, i))
    return out


def _case(client: Any, sink_template: Any, batch_rows: int, seconds: float) -> dict[str, Any]:
    sink = sink_template.model_copy(
        update={"table": f"bench_sink_{batch_rows}_{int(time.time())}", "ttl": None}
    )
    writer = SinkWriter(client, sink, contract("Measurement"))
    lat, rows, n, build_s = [], 0, 0, 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or n == 0:
        b0 = time.perf_counter()
        batch = _batch(rows, batch_rows)
        t0 = time.perf_counter()
        writer.write(batch)
        t1 = time.perf_counter()
        build_s += t0 - b0
        lat.append(t1 - t0)
        rows += batch_rows
        n += 1
    # memory in a separate pass: tracing slows Python code by an order of magnitude
    probe = _batch(rows, batch_rows)
    tracemalloc.start()
    writer.write(probe)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows_total = rows + batch_rows
    stored = client.query(f"SELECT count() FROM {sink.table}").result_rows[0][0]
    client.command(f"DROP TABLE IF EXISTS {sink.table}")
    write_s = sum(lat)
    return {
        f"b{batch_rows}_rows_per_s": round(rows / write_s),
        f"b{batch_rows}_batches": n,
        f"b{batch_rows}_rows": rows,
        f"b{batch_rows}_rows_stored": stored,
        f"b{batch_rows}_rows_written_incl_memory_pass": rows_total,
        f"b{batch_rows}_batch_ms_p50": round(float(np.percentile(lat, 50)) * 1000, 2),
        f"b{batch_rows}_batch_ms_p99": round(float(np.percentile(lat, 99)) * 1000, 2),
        f"b{batch_rows}_peak_traced_mb": round(peak / 2**20, 1),
        f"b{batch_rows}_record_build_s": round(build_s, 2),
    }


def run(seconds: float = 5.0, batch_sizes: str = "1000,10000,50000", **params: Any) -> dict:
    """Rows/s through SinkWriter into ClickHouse per batch size; ``seconds`` per batch size."""
    sizes = [int(s) for s in str(batch_sizes).split(",")]
    with tempfile.TemporaryDirectory(prefix="edream-bench-sink-") as tmp:
        settings = load_settings()
        if not settings.clickhouse_dsn:
            settings = settings.model_copy(update={"edream_data_dir": Path(tmp)})
        client = get_client(settings)
        sink = next(s for s in load_topology(settings.edream_topology).sinks if s.name == "measurements")
        out: dict[str, Any] = {"bench": "sink", "seconds_per_case": seconds, "batch_sizes": sizes}
        out["clickhouse"] = settings.effective_clickhouse_dsn.split("@")[-1]
        for size in sizes:
            out.update(_case(client, sink, size, seconds))
        out["best_rows_per_s"] = max(out[f"b{s}_rows_per_s"] for s in sizes)
        out["goal_rows_per_s"] = 200_000
        out["peak_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
        return out
