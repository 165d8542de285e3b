"""ClickHouse side of anchoring: read settlement rows, store receipts and anchor manifests.

Tables (all ``ReplacingMergeTree``, so replays never duplicate):

* settlement rows (written by the flexibility and market sinks; table per kind, see :data:`SETTLEMENT_TABLES`),
  read back as Avro-shaped dicts (timestamps as UTC epoch ms), i.e. exactly what was hashed;
* ``chain_anchors``: one :class:`AnchorReceipt` row per (kind, window_id);
* ``chain_anchor_leaves``: the anchor *manifest* (``AnchorLeaf`` rows), (kind, window_id, settlement_id) -> leaf hash
  as anchored.
  It is untrusted: verification accepts it only if it rebuilds the on-chain root (see :mod:`.verify`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.topology import Sink
from streams.anchoring.merkle import leaf_hash
from streams.anchoring.windows import WindowKey, dedupe_latest

#: Default table of each settlement kind (the flex and market sinks' names); override per deployment.
SETTLEMENT_TABLES: dict[str, str] = {"FLEX": "settlement_flex", "MARKET": "market_settlement"}


def _ms(value: Any) -> Any:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


class AnchorStore:
    """Reads and writes the anchoring tables through one clickhouse-connect ``client``."""

    def __init__(
        self,
        client: Any,
        settlement_tables: Mapping[str, str] | None = None,
        anchors_table: str = "chain_anchors",
        leaves_table: str = "chain_anchor_leaves",
    ):
        self.client = client
        self.settlement_tables = dict(settlement_tables or SETTLEMENT_TABLES)
        self.anchors_table = anchors_table
        self.leaves_table = leaves_table
        self._settlement = contract("Settlement")
        self._receipt = contract("AnchorReceipt")
        self._ts_fields = {
            f["name"]
            for f in self._settlement.raw["fields"]
            if isinstance(f["type"], dict) and f["type"].get("logicalType") == "timestamp-millis"
        }

    # -- schema ---------------------------------------------------------------------------------------
    def ensure_tables(self, settlements: bool = False) -> None:
        """Create the anchoring tables (and, with ``settlements``, the settlement tables, for tests/demos)."""
        ensure_table(
            self.client,
            Sink(
                name=self.anchors_table,
                topic="chain.anchor.receipts.v1",
                table=self.anchors_table,
                order_by=["kind", "window_id"],
            ),
            self._receipt,
        )
        ensure_table(
            self.client,
            Sink(
                name=self.leaves_table,
                topic="chain.anchor.leaves.v1",
                table=self.leaves_table,
                order_by=["kind", "window_id", "settlement_id"],
            ),
            contract("AnchorLeaf"),
        )
        if settlements:
            for kind, table in self.settlement_tables.items():
                topic = f"settlement.{kind.lower()}.v1"
                ensure_table(
                    self.client,
                    Sink(
                        name=table,
                        topic=topic,
                        table=table,
                        order_by=["window_id", "settlement_id"],
                        version="version",
                    ),
                    self._settlement,
                )

    # -- settlements ----------------------------------------------------------------------------------
    def insert_settlements(
        self, kind: str, records: Sequence[dict[str, Any]], dedup_token: str | None = None
    ) -> None:
        enc = RowEncoder(self._settlement)
        insert_rows(
            self.client,
            self.settlement_tables[kind],
            enc.columns,
            [enc.row(r) for r in records],
            dedup_token=dedup_token,
            max_wait_s=30,
        )

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.client.query(sql, parameters=params)
        out = []
        for row in res.result_rows:
            rec = dict(zip(res.column_names, row, strict=True))
            for f in self._ts_fields:
                rec[f] = _ms(rec[f])
            out.append(rec)
        return out

    def window_records(self, key: WindowKey) -> list[dict[str, Any]]:
        """Latest version of every settlement of ``key.kind`` whose ``window_start`` lies in the window."""
        table = self.settlement_tables[key.kind]
        sql = (
            f"SELECT * FROM {table} FINAL WHERE kind = {{kind:String}} "
            "AND toUnixTimestamp64Milli(window_start) >= {start:Int64} "
            "AND toUnixTimestamp64Milli(window_start) < {end:Int64}"
        )
        return dedupe_latest(self._rows(sql, {"kind": key.kind, "start": key.start_ms, "end": key.end_ms}))

    def record(self, kind: str, settlement_id: str) -> dict[str, Any] | None:
        table = self.settlement_tables[kind]
        rows = self._rows(
            f"SELECT * FROM {table} FINAL WHERE settlement_id = {{sid:String}}", {"sid": settlement_id}
        )
        latest = dedupe_latest(rows)
        return latest[0] if latest else None

    # -- receipts and manifests -----------------------------------------------------------------------
    def record_anchor(self, receipt: dict[str, Any], records: Sequence[dict[str, Any]]) -> None:
        """Store the receipt and the manifest of its window; idempotent (dedup token = receipt event id)."""
        kind, wid = receipt["kind"], receipt["window_id"]
        leaves = [[kind, wid, r["settlement_id"], "0x" + leaf_hash(r).hex()] for r in dedupe_latest(records)]
        insert_rows(
            self.client,
            self.leaves_table,
            ["kind", "window_id", "settlement_id", "leaf"],
            leaves,
            dedup_token=f"leaves-{receipt['event_id']}",
            max_wait_s=30,
        )
        enc = RowEncoder(self._receipt)
        insert_rows(
            self.client,
            self.anchors_table,
            enc.columns,
            [enc.row(receipt)],
            dedup_token=f"receipt-{receipt['event_id']}",
            max_wait_s=30,
        )

    def manifest(self, kind: str, window_id: str) -> dict[str, bytes]:
        res = self.client.query(
            f"SELECT settlement_id, leaf FROM {self.leaves_table} FINAL "
            "WHERE kind = {kind:String} AND window_id = {wid:String}",
            parameters={"kind": kind, "wid": window_id},
        )
        return {sid: bytes.fromhex(leaf[2:]) for sid, leaf in res.result_rows}

    def manifest_window_of(self, settlement_id: str) -> tuple[str, str] | None:
        """(kind, window_id) of the anchored window that holds ``settlement_id``, if any."""
        res = self.client.query(
            f"SELECT kind, window_id FROM {self.leaves_table} FINAL WHERE settlement_id = {{sid:String}} "
            "ORDER BY window_id DESC LIMIT 1",
            parameters={"sid": settlement_id},
        )
        return (res.result_rows[0][0], res.result_rows[0][1]) if res.result_rows else None

    def receipt(self, kind: str, window_id: str) -> dict[str, Any] | None:
        res = self.client.query(
            f"SELECT * FROM {self.anchors_table} FINAL WHERE kind = {{kind:String}} AND window_id = {{wid:String}}",
            parameters={"kind": kind, "wid": window_id},
        )
        if not res.result_rows:
            return None
        rec = dict(zip(res.column_names, res.result_rows[0], strict=True))
        return {k: _ms(v) for k, v in rec.items()}
