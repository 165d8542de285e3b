"""The integrators' REST API over HTTP, served as ``edream run`` serves it (FastAPI on uvicorn on an event loop,
ClickHouse queries serialised on one thread, submissions acknowledged by the broker), on an embedded chDB holding
``orders`` flex orders' settlements (``prosumers`` per order, 4 slots each) and an embedded broker.

Cases, ``seconds`` each, ``threads`` httpx clients in parallel: ``lookup`` (one order's settlements by
``reference_id``), ``page`` (the 100 newest settlements), ``submit`` (a FlexRequest POSTed and acknowledged by the
broker). Reports requests/s and latency p50/p99 (ms) per case, errors, and the process's peak RSS (server and
clients share it). No goal is set by an issue; a REST client is an integrator's back office, not a meter.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from confluent_kafka.admin import AdminClient, NewTopic

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, get_client, insert_columns
from edream.embedded.broker import EmbeddedBroker
from edream.rest.app import build_api
from edream.rest.hosting import query_rows
from edream.rest.producer import AckedProducer
from edream.rest.server import serving_in_thread
from edream.serde import Serde
from edream.settings import load_settings
from edream.topology import load_topology

T0 = 1_796_000_000_000  # UTC epoch ms


def _settlements(orders: int, prosumers: int) -> list[dict[str, Any]]:
    out = []
    for o in range(orders):
        for p in range(prosumers):
            for s in range(4):
                start = T0 + (o % 96) * 900_000 + s * 900_000
                out.append(
                    {
                        "event_id": f"ev-{o}-{p}-{s}",
                        "settlement_id": f"stl-{o}-{p}-{s}",
                        "kind": "FLEX",
                        "window_id": f"w-{start}",
                        "window_start": start,
                        "window_end": start + 900_000,
                        "party_id": f"prosumer-{p:04d}",
                        "reference_id": f"ord-{o:05d}",
                        "quantity_wh": 1000 + p,
                        "amount_micro": 50_000,
                        "currency": "EUR",
                        "details": json.dumps({"target_wh": 1250, "delivered_wh": 1000 + p}),
                        "version": 1,
                        "computed_at": start + 1_800_000,
                    }
                )
    return out


def _case(name: str, call: Any, seconds: float, threads: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.perf_counter() + seconds

    def client(k: int) -> None:
        with httpx.Client(timeout=30) as http:
            i = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                ok = call(http, k, i)
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    errors[0] += 0 if ok else 1
                i += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(client, range(threads)))
    wall = time.perf_counter() - t0
    return {
        f"{name}_per_s": round(len(lat) / wall, 1),
        f"{name}_ms_p50": round(float(np.percentile(lat, 50)) * 1000, 1),
        f"{name}_ms_p99": round(float(np.percentile(lat, 99)) * 1000, 1),
        f"{name}_errors": errors[0],
    }


def run(seconds: float = 5.0, threads: int = 4, orders: int = 1000, prosumers: int = 20) -> dict[str, Any]:
    """Requests/s and latency of the REST API's reads and submissions (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="edream-bench-rest-") as tmp:
        settings = load_settings().model_copy(update={"edream_data_dir": Path(tmp), "clickhouse_dsn": None})
        topology = load_topology(settings.edream_topology)
        client = get_client(settings)
        sink = next(s for s in topology.sinks if s.name == "settlement_flex")
        c = contract("Settlement")
        ensure_table(client, sink, c)
        enc = RowEncoder(c)
        rows = _settlements(orders, prosumers)
        insert_columns(client, sink.table, enc.columns, enc.columns_of(rows))
        broker = EmbeddedBroker(Path(tmp))
        broker.start()
        try:
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            for fut in admin.create_topics([NewTopic("flex.requests.v1", 4, 1)]).values():
                fut.result(15)
            producer = AckedProducer(settings, broker.bootstrap)
            ch_thread = ThreadPoolExecutor(1, "clickhouse")  # the worker's one ClickHouse thread

            async def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(ch_thread, query_rows, client, sql, params)

            app = build_api(topology, Serde(), query, producer.send)
            base = ""

            def lookup(http: httpx.Client, k: int, i: int) -> bool:
                order = f"ord-{(k * 7919 + i) % orders:05d}"
                r = http.get(f"{base}/flex/settlements", params={"reference_id": order, "limit": 1000})
                return r.status_code == 200 and r.json()["count"] == prosumers * 4

            def page(http: httpx.Client, k: int, i: int) -> bool:
                r = http.get(f"{base}/flex/settlements", params={"limit": 100})
                return r.status_code == 200 and r.json()["count"] == 100

            def submit(http: httpx.Client, k: int, i: int) -> bool:
                now = int(time.time() * 1000)
                body = {
                    "event_id": f"ev-bench-{k}-{i}",
                    "request_id": f"req-bench-{k}-{i}",
                    "dso_id": "dso-bench",
                    "area_id": "area-1",
                    "direction": "REDUCE",
                    "slots": [{"slot_start": now + 3_600_000, "kw": 10.0}],
                    "reward_micro_per_kwh": 100_000,
                    "deadline": now + 1_800_000,
                    "created_at": now,
                    "signature": "0x" + "ab" * 65,
                }
                return http.post(f"{base}/flex/requests", json=body).status_code == 202

            out: dict[str, Any] = {
                "bench": "rest",
                "seconds_per_case": seconds,
                "threads": threads,
                "settlement_rows": len(rows),
                "orders": orders,
            }
            with serving_in_thread(app) as server:
                base = f"http://127.0.0.1:{server.port}/api/v1"
                for name, call in (("lookup", lookup), ("page", page), ("submit", submit)):
                    out.update(_case(name, call, seconds, threads))
            producer.close()
            ch_thread.shutdown()
        finally:
            broker.stop()
        out["peak_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
        return out
