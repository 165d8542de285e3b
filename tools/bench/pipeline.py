"""Benchmark: Measurement events through decode + validation + dedup + 15-minute interval aggregation, in process.

``run(seconds, meters=..., period_ms=...)`` pre-encodes a fleet's readings (Avro single-object framing, as on the
wire), then measures (1) the maximum rate of one worker (events/s), (2) processing latency p50/p99 when events
arrive paced at ``load_factor`` (default half) of that rate - latency is completion time minus the event's
scheduled arrival time, so queueing counts - (3) peak RSS and the state size, and (4) a per-stage profile (share
of time in decode / validate / dedup / aggregate / encode of the emitted intervals).
"""

from __future__ import annotations

import gc
import io
import os
import pickle
import time
from typing import Any

import fastavro
import numpy as np
import psutil

from edream.avro_schemas import all_contracts, strip_logical_types
from edream.serde import Serde
from streams.analytics.intervals import IntervalAggregator, IntervalConfig
from streams.analytics.validation import DuplicateFilter, validate_measurement

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _events(n: int, meters: int, period_ms: int, serde: Serde) -> list[bytes]:
    out = []
    for k in range(n):
        m, step = k % meters, k // meters
        ts = T0 + step * period_ms + (m * 7) % period_ms
        rec = {
            "event_id": f"bench/m{m}/P_ACTIVE/TOTAL/{ts}",
            "device_id": f"m{m}",
            "prosumer_id": f"p{m}",
            "site_id": None,
            "quantity": "P_ACTIVE",
            "phase": "TOTAL",
            "value": 500.0 + (k % 97) * 10.0,
            "unit": "W",
            "obis_code": None,
            "quality": "GOOD",
            "source_protocol": "SIMULATOR",
            "connector_id": "bench",
            "ts": ts,
            "ts_source": "DEVICE",
            "seq": step,
            "ingest_ts": ts,
        }
        out.append(serde.encode("Measurement", rec))
    return out


class HintedDecoder:
    """Single-object decoding straight through fastavro with hinted parsed schemas (comparison baseline).

    Early ``edream.serde`` parsed with ``_write_hint=False``, making ``schemaless_reader`` re-parse the schema on
    every call (about 4x slower); this variant isolates the decoder cost. Single-object framing only.
    """

    def __init__(self) -> None:
        self._schemas = {
            c.fingerprint: (c.name, fastavro.parse_schema(strip_logical_types(c.raw)))
            for c in all_contracts().values()
        }

    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]:
        name, schema = self._schemas[data[2:10]]
        return name, fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)


class Pipeline:
    """The per-worker processing chain; ``handle(bytes)`` returns the encoded IntervalEnergy outputs."""

    def __init__(self, serde: Serde, period_ms: int, decoder: str = "serde"):
        self.serde = serde
        self.decode = HintedDecoder().decode if decoder == "hinted" else serde.decode
        self.dedup = DuplicateFilter(capacity=500_000)
        self.agg = IntervalAggregator(IntervalConfig(expected_period_ms=period_ms), now_ms=lambda: T0)
        self.rejected = 0
        self.intervals = 0

    def handle(self, data: bytes) -> list[bytes]:
        _, rec = self.decode(data)
        if not validate_measurement(rec).ok or self.dedup.seen(rec):
            self.rejected += 1
            return []
        out = self.agg.process(rec).intervals
        if out:
            self.intervals += len(out)
            return [self.serde.encode("IntervalEnergy", r) for r in out]
        return []


def _throughput(
    events: list[bytes], seconds: float, period_ms: int, decoder: str
) -> tuple[float, int, Pipeline]:
    p = Pipeline(Serde(), period_ms, decoder)
    handle = p.handle
    n = 0
    t_end = time.perf_counter() + seconds
    start = time.perf_counter()
    chunk = 2000
    while n < len(events) and time.perf_counter() < t_end:
        for data in events[n : n + chunk]:
            handle(data)
        n += min(chunk, len(events) - n)
    return n / (time.perf_counter() - start), n, p


def _paced(events: list[bytes], rate: float, seconds: float, period_ms: int, decoder: str) -> np.ndarray:
    p = Pipeline(Serde(), period_ms, decoder)
    handle = p.handle
    n_total = min(len(events), int(rate * seconds))
    lat = np.empty(n_total)
    start = time.perf_counter()
    i = 0
    while i < n_total:
        now = time.perf_counter()
        due = min(n_total, int((now - start) * rate) + 1)
        if due <= i:
            time.sleep(max(0.0, (i / rate) - (now - start)))
            continue
        j0 = i
        for data in events[i:due]:
            handle(data)
        i = due
        done = time.perf_counter() - start
        lat[j0:i] = done - np.arange(j0, i) / rate
    return lat


def _profile(events: list[bytes], period_ms: int, decoder: str) -> dict[str, float]:
    serde = Serde()
    decode = HintedDecoder().decode if decoder == "hinted" else serde.decode
    dedup = DuplicateFilter()
    agg = IntervalAggregator(IntervalConfig(expected_period_ms=period_ms), now_ms=lambda: T0)
    t = dict.fromkeys(("decode", "validate", "dedup", "aggregate", "encode_out"), 0.0)
    pc = time.perf_counter
    for data in events:
        a = pc()
        _, rec = decode(data)
        b = pc()
        ok = validate_measurement(rec).ok
        c = pc()
        dup = dedup.seen(rec)
        d = pc()
        out = agg.process(rec).intervals if ok and not dup else []
        e = pc()
        for r in out:
            serde.encode("IntervalEnergy", r)
        f = pc()
        t["decode"] += b - a
        t["validate"] += c - b
        t["dedup"] += d - c
        t["aggregate"] += e - d
        t["encode_out"] += f - e
    total = sum(t.values())
    return {f"share_{k}": round(v / total, 3) for k, v in t.items()} | {
        "profile_us_per_event": total / len(events) * 1e6
    }


def run(
    seconds: float = 5.0,
    meters: int = 200,
    period_ms: int = 5000,
    load_factor: float = 0.5,
    max_events: int = 400_000,
    decoder: str = "serde",
    **_: Any,
) -> dict[str, Any]:
    """``decoder``: "serde" (the platform's edream.serde) or "hinted" (see :class:`HintedDecoder`)."""
    proc = psutil.Process(os.getpid())
    serde = Serde()
    n = min(max_events, max(meters * 20, int(seconds * 80_000)))
    events = _events(n, meters, period_ms, serde)
    gc.collect()
    rss0 = proc.memory_info().rss
    rate, processed, pipe = _throughput(events, seconds, period_ms, decoder)
    rss_peak = proc.memory_info().rss
    state_bytes = len(pickle.dumps(pipe.agg.snapshot()))
    lat = _paced(events, rate * load_factor, seconds, period_ms, decoder)
    prof = _profile(events[: min(len(events), 50_000)], period_ms, decoder)
    return {
        "benchmark": "pipeline",
        "stages": "decode+validate+dedup+interval_aggregation+encode_intervals",
        "decoder": decoder,
        "meters": meters,
        "period_ms": period_ms,
        "seconds": seconds,
        "events_per_s": round(rate),
        "events_processed": processed,
        "intervals_emitted": pipe.intervals,
        "paced_rate_per_s": round(rate * load_factor),
        "latency_ms_p50": round(float(np.percentile(lat, 50)) * 1000, 3),
        "latency_ms_p99": round(float(np.percentile(lat, 99)) * 1000, 3),
        "latency_ms_max": round(float(lat.max()) * 1000, 3),
        "rss_mb_start": round(rss0 / 2**20, 1),
        "rss_mb_after": round(rss_peak / 2**20, 1),
        "aggregator_state_kb": round(state_bytes / 1024, 1),
        **prof,
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(2.0, decoder=sys.argv[1] if len(sys.argv) > 1 else "serde")))
