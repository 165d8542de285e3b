"""Benchmark: dashboard snapshot (all panels) latency on chDB with N prosumers' measurements and market data."""

from __future__ import annotations

import tempfile
import time
import tracemalloc
import uuid
from typing import Any

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.dashboard.registry import PanelSource, discover, snapshot
from edream.dashboard.tables import DEFAULT_TABLES
from edream.topology import Sink


def _load(client: Any, table: str, schema: str, order_by: list[str], records: list[dict[str, Any]]) -> None:
    c = contract(schema)
    ensure_table(client, Sink(name=table, topic="t", table=table, order_by=order_by), c)
    enc, base = RowEncoder(c), sample_value(c.raw)
    insert_rows(client, table, enc.columns, [enc.row({**base, **r}) for r in records])


def run(seconds: float = 5.0, prosumers: int = 50, minutes: int = 120, **_: Any) -> dict:
    """Fill ``measurements`` with one reading per prosumer every 5 s over ``minutes`` and 96 clearing slots, then
    render all panels repeatedly for ``seconds``; report snapshot latency percentiles (ms)."""
    import clickhouse_connect

    tmp = tempfile.mkdtemp(prefix="edream-bench-dash-")
    client = clickhouse_connect.get_client(dsn=f"chdb://{tmp}")
    sfx = uuid.uuid4().hex[:6]
    tables = {k: f"{v}_{sfx}" for k, v in DEFAULT_TABLES.items()}
    now = int(time.time() * 1000)
    rows = [
        dict(
            event_id=f"{p}/{t}",
            device_id=f"m{p}",
            prosumer_id=f"prosumer-{p:03d}",
            quantity="P_ACTIVE",
            phase="TOTAL",
            unit="W",
            value=1000.0 + p,
            ts=now - t * 5000,
            seq=t,
            connector_id="bench",
        )
        for p in range(prosumers)
        for t in range(minutes * 12)
    ]
    _load(client, tables["measurements"], "Measurement", ["device_id", "quantity", "phase", "ts"], rows)
    _load(
        client,
        tables["market_clearing"],
        "ClearingResult",
        ["session_id"],
        [
            dict(
                event_id=f"c{i}",
                session_id=f"s{i}",
                slot_start=now - i * 900_000,
                price_micro_per_kwh=100_000 + i,
            )
            for i in range(96)
        ],
    )
    panels = discover()
    src = PanelSource(
        client=client, now_ms=now, tables=tables, counters={"sink.x.rows": 1}, window_ms=minutes * 60_000
    )
    snapshot(panels, src)  # warm-up
    lat: list[float] = []
    tracemalloc.start()
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or len(lat) < 3:
        t0 = time.perf_counter()
        snapshot(panels, src)
        lat.append((time.perf_counter() - t0) * 1000)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lat.sort()
    return {
        "prosumers": prosumers,
        "minutes": minutes,
        "measurement_rows": len(rows),
        "snapshots": len(lat),
        "snapshot_ms_p50": round(lat[len(lat) // 2], 1),
        "snapshot_ms_p99": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
        "snapshots_per_s": round(len(lat) / (sum(lat) / 1000), 2),
        "peak_python_mem_mb": round(peak / 1e6, 2),
    }
