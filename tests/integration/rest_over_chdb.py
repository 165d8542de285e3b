"""The platform's REST API (read side) served over HTTP on a database of the session's chDB, for clients of the
API (e.g. the UFTP gateway's ledger) tested without a whole platform; the tables are the topology's sinks."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import clickhouse_connect

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.rest.app import build_api
from edream.rest.hosting import query_rows
from edream.rest.server import serving_in_thread
from edream.serde import Serde
from edream.topology import Topology


class RestOverChdb:
    def __init__(self, chdb_path: Path, topology: Topology):
        self.database = f"rest_{uuid.uuid4().hex[:10]}"
        clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}").command(f"CREATE DATABASE {self.database}")
        self.client = clickhouse_connect.get_client(dsn=f"chdb://{chdb_path}", database=self.database)
        self.topology = topology
        self._lock = threading.Lock()

    def insert(self, sink_name: str, records: list[dict[str, Any]]) -> None:
        """Write ``records`` into the sink's table as the sink would (table from the topic's contract)."""
        sink = next(s for s in self.topology.sinks if s.name == sink_name)
        schema = self.topology.topic(sink.topic).value_schema.removesuffix(".avsc")
        c = contract(schema)
        ensure_table(self.client, sink, c)
        enc = RowEncoder(c)
        if records:
            serde = Serde()  # through Avro: the contract's defaults filled in, as the sink gets them
            full = [serde.decode(serde.encode(schema, r))[1] for r in records]
            insert_rows(self.client, sink.table, enc.columns, [enc.row(r) for r in full])

    async def _query(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            with self._lock:  # one ClickHouse thread, as in the platform
                return query_rows(self.client, sql, params)

        return await asyncio.to_thread(run)

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve the API; yields its ``.../api/v1`` URL."""

        async def read_only(topic: str, key: bytes | None, value: bytes) -> tuple[int, int]:
            raise RuntimeError("this test API takes no submissions")

        for sink in ("flex_acceptances", "flex_orders", "settlement_flex", "forecasts"):
            self.insert(sink, [])
        app = build_api(self.topology, Serde(), self._query, read_only)
        with serving_in_thread(app) as server:
            yield f"http://127.0.0.1:{server.port}/api/v1"
