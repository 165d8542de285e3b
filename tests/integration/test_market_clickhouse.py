"""The example queries in streams/market/queries.sql run on real chDB tables derived from the Avro contracts."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.topology import Sink
from streams.market.clearing import clear
from streams.market.config import MarketConfig
from streams.market.events import clearing_record, rejection_record, trades_of
from streams.market.market_order import MarketOrder
from streams.market.network_clearing import CongestionLimit, Network, clear_with_network
from streams.market.orders import BookOrder, EnergyType, Side
from streams.market.settlement import Metered, settle_session
from streams.market.validation import RejectCode, Verdict

pytestmark = pytest.mark.integration

QUERIES = Path(__file__).resolve().parents[2] / "streams" / "market" / "queries.sql"
SLOT = 1_795_435_200_000
CFG = MarketConfig()
BOOK = [
    BookOrder("A1", "A1", Side.OFFER, 2000, 80_000),
    BookOrder("A2", "A2", Side.OFFER, 3000, 100_000),
    BookOrder("B1", "B1", Side.BID, 4000, 200_000),
    BookOrder("B2", "B2", Side.BID, 3000, 120_000),
]
TABLES = {
    "market_orders": ("MarketOrder", ["session_id", "order_id"], None),
    "market_orders_accepted": ("MarketOrder", ["session_id", "order_id"], None),
    "rejections": ("Rejection", ["subject_kind", "subject_id", "code"], None),
    "market_clearing": ("ClearingResult", ["session_id"], None),
    "market_trades": ("Trade", ["session_id", "trade_id"], None),
    "market_settlement": ("Settlement", ["window_id", "settlement_id"], "version"),
}


def queries() -> dict[str, str]:
    out = {}
    for block in QUERIES.read_text().split("-- name: ")[1:]:
        name, _, body = block.partition("\n")
        out[name.strip()] = "\n".join(line for line in body.splitlines() if not line.startswith("--")).strip(
            " ;\n"
        )
    return out


def test_queries_on_chdb(chdb_client, unique_table):
    names = {t: unique_table(t) for t in TABLES}
    session = CFG.session_id(SLOT)
    result = clear(BOOK)
    trades = trades_of(result, session, SLOT)
    metered = {"A1": Metered(export_wh=1500), "A2": Metered(export_wh=3000)}
    orders = [
        MarketOrder(
            o.participant_id,
            "0x" + "00" * 20,
            session,
            o.side,
            SLOT,
            15,
            o.quantity_wh,
            o.price,
            EnergyType.ANY,
            0,
            0,
            order_id=o.order_id,
            signature="0x",
        )
        for o in BOOK
    ]
    # submitted besides the book: an unsigned order the market rejected, and one it has not processed yet
    unsigned = dataclasses.replace(orders[0], order_id="X1", participant_id="X", quantity_wh=9000)
    pending = dataclasses.replace(orders[0], order_id="P1", participant_id="P", quantity_wh=1000)
    refused = rejection_record(
        unsigned, Verdict(False, RejectCode.BAD_SIGNATURE, "not signed"), SLOT - 60_000
    )
    records = {
        "market_orders": [o.to_avro() for o in [*orders, unsigned, pending]],
        "market_orders_accepted": [o.to_avro() for o in orders],
        "rejections": [refused],
        "market_clearing": [clearing_record(result, session, SLOT, SLOT - 900_000)],
        "market_trades": [t.to_avro() for t in trades],
        "market_settlement": [s.to_avro() for s in settle_session(CFG, trades, metered)],
    }
    for table, (schema, order_by, version) in TABLES.items():
        c = contract(schema)
        ensure_table(
            chdb_client,
            Sink(name=table, topic="x", table=names[table], order_by=order_by, version=version),
            c,
        )
        enc = RowEncoder(c)
        rows = [enc.row(r) for r in records[table]]
        for _ in range(2):  # a replayed batch must not duplicate rows
            insert_rows(chdb_client, names[table], enc.columns, rows, dedup_token=f"{table}-1", max_wait_s=5)

    def run(name: str) -> list[tuple]:
        sql = queries()[name]
        for generic, unique in names.items():
            sql = re.sub(rf"\b{generic}\b", unique, sql)
        return chdb_client.query(sql).result_rows

    price = run("price_history")
    assert [(r[1], r[3], r[5]) for r in price] == [(session, 120_000, 5000)]  # B2 partly filled: its limit
    pnl = {r[0]: r[3] for r in run("prosumer_pnl")}
    # trades at 0.12: B1<-A1 2000, B1<-A2 2000, B2<-A2 1000; A1 delivers 1500 of 2000 (penalty 500 Wh x 0.05)
    assert pnl == {"A1": 180_000 - 25_000, "A2": 360_000, "B1": -420_000, "B2": -120_000, "POOL": 25_000}
    assert sum(pnl.values()) == 0
    vwap = {r[0]: r[1:] for r in run("traded_volume_vwap")}
    assert vwap["B1"] == (4000, 0, 120_000) and vwap["A2"] == (0, 3000, 120_000)
    assert len(run("prosumer_daily_pnl")) == 5
    # the book is the accepted orders only: the rejected and the pending order are not in it
    depth = [(r[1], r[2], r[3], r[4], r[5]) for r in run("book_depth")]
    assert depth == [("BID", 2, 7000, 120_000, 200_000), ("OFFER", 2, 5000, 80_000, 100_000)]
    status = {r[0]: r[6:] for r in run("order_status")}
    assert status == {
        **{o.order_id: ("ACCEPTED", "", "") for o in BOOK},
        "X1": ("REJECTED", "BAD_SIGNATURE", "not signed"),
        "P1": ("PENDING", "", ""),
    }

    # a session cleared within a congestion limit lands with its welfare figures (columns from the contract)
    later = CFG.session_id(SLOT + 900_000)
    net = Network((CongestionLimit("T", 0, 1000),), {"A1": frozenset({"T"}), "A2": frozenset({"T"})})
    nc = clear_with_network(BOOK, net)
    enc = RowEncoder(contract("ClearingResult"))
    record = clearing_record(nc.clearing, later, SLOT + 900_000, SLOT, nc)
    insert_rows(chdb_client, names["market_clearing"], enc.columns, [enc.row(record)], max_wait_s=5)
    got = chdb_client.query(
        "SELECT network_status, cleared_wh, reference_cleared_wh, welfare_micro, reference_welfare_micro, "
        f"binding_limits, zone_prices FROM {names['market_clearing']} FINAL WHERE session_id = '{later}'"
    ).result_rows
    # only 1000 Wh may leave T: A1 -> B1 (200k - 80k) x 1 kWh; unconstrained 5000 Wh, 460,000 micro-units
    assert got == [("CONSTRAINED", 1000, 5000, 120_000, 460_000, ["T:EXPORT"], '{"-":200000,"T":80000}')]
    cost = run("grid_limits_cost")
    assert [(r[1], r[2], r[7], r[8]) for r in cost] == [(later, "CONSTRAINED", 340_000, ["T:EXPORT"])]
