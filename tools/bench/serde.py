"""Avro encode/decode throughput per framing, against raw fastavro (the floor: no framing, no lookup).

Encodes and decodes a realistic Measurement record repeatedly for ``seconds`` per case and reports
messages/s, per-message latency percentiles (from batches of 1,000) and peak traced memory.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import fastavro
import psutil

from edream.avro_schemas import contract
from edream.serde import Serde

BATCH = 1000


def _record() -> dict[str, Any]:
    return {
        "event_id": "mqtt-1/meter-0042/P_ACTIVE/TOTAL/1795440000000",
        "device_id": "meter-0042",
        "prosumer_id": "prosumer-0042",
        "site_id": "terni",
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": 4280.5,
        "unit": "W",
        "obis_code": "1-0:1.7.0",
        "quality": "GOOD",
        "source_protocol": "MQTT",
        "connector_id": "mqtt-1",
        "ts": 1_795_440_000_000,
        "ts_source": "DEVICE",
        "seq": 123456,
        "ingest_ts": 1_795_440_000_120,
    }


def _measure(fn: Callable[[], None], seconds: float) -> dict[str, float]:
    per_msg_us: list[float] = []
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(BATCH):
            fn()
        per_msg_us.append((time.perf_counter() - t0) / BATCH * 1e6)
        n += BATCH
    elapsed = time.perf_counter() - start
    per_msg_us.sort()
    return {
        "msgs_per_s": round(n / elapsed),
        "p50_us": round(per_msg_us[len(per_msg_us) // 2], 3),
        "p99_us": round(per_msg_us[min(len(per_msg_us) - 1, int(len(per_msg_us) * 0.99))], 3),
    }


def run(seconds: float = 5.0, **params: Any) -> dict[str, Any]:
    rec = _record()
    c = contract("Measurement")
    single, confluent = Serde(), Serde(registry_url="mock://bench")
    topic = "meter.readings.raw.v1"
    so_bytes, cf_bytes = single.encode("Measurement", rec), confluent.encode("Measurement", rec, topic)
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, c.parsed, rec)
    raw_bytes = buf.getvalue()

    def raw_encode() -> None:
        b = io.BytesIO()
        fastavro.schemaless_writer(b, c.parsed, rec)

    cases: dict[str, Callable[[], None]] = {
        "raw_fastavro_encode": raw_encode,
        "raw_fastavro_decode": lambda: fastavro.schemaless_reader(io.BytesIO(raw_bytes), c.parsed),
        "single_object_encode": lambda: single.encode("Measurement", rec),
        "single_object_decode": lambda: single.decode(so_bytes),
        "confluent_encode": lambda: confluent.encode("Measurement", rec, topic),
        "confluent_decode": lambda: confluent.decode(cf_bytes),
    }
    per_case = max(0.2, seconds / len(cases))
    results = {name: _measure(fn, per_case) for name, fn in cases.items()}
    tracemalloc.start()  # separate, short pass: tracing slows Python down by an order of magnitude
    for fn in cases.values():
        for _ in range(BATCH):
            fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out: dict[str, Any] = {
        "benchmark": "serde",
        "schema": "Measurement",
        "seconds_per_case": round(per_case, 2),
        "message_bytes": {"raw": len(raw_bytes), "single_object": len(so_bytes), "confluent": len(cf_bytes)},
        "peak_traced_memory_kib": round(peak / 1024),
        "peak_rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1),
    }
    for name, r in results.items():
        out[name] = r
    for framing in ("single_object", "confluent"):
        for op in ("encode", "decode"):
            out[f"{framing}_{op}_vs_raw"] = round(
                results[f"{framing}_{op}"]["msgs_per_s"] / results[f"raw_fastavro_{op}"]["msgs_per_s"], 3
            )
    return out
