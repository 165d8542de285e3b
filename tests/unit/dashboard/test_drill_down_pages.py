"""Drill-down pages (prosumer, market slot, anchor window) against real chDB tables built from the Avro contracts."""

from __future__ import annotations

import pytest
from test_dashboard_panels import MIN, NOW, _fill, _src

from edream.dashboard.pages import NotFound, discover_pages
from edream.dashboard.pages.market_slot import BookOrder, step_curve
from edream.dashboard.tables import DEFAULT_TABLES

PAGES = discover_pages()


@pytest.fixture
def tables(unique_table) -> dict[str, str]:
    return {k: unique_table(f"page_{k}") for k in DEFAULT_TABLES}


def _stats(p: dict) -> dict:
    return {s["label"]: s["value"] for b in p["blocks"] if b["kind"] == "stats" for s in b["stats"]}


def _tables(p: dict) -> dict:
    return {b["title"].split(" (")[0]: b["rows"] for b in p["blocks"] if b["kind"] == "table"}


def _settlement(i: int, party: str, amount_micro: int, **kw) -> dict:
    return (
        dict(
            event_id=f"s{i}",
            settlement_id=f"s{i}",
            kind="FLEX",
            window_id="w",
            window_start=NOW - 30 * MIN,
            window_end=NOW - 15 * MIN,
            party_id=party,
            reference_id="o1",
            quantity_wh=100,
            amount_micro=amount_micro,
            currency="EUR",
            details="{}",
            version=1,
        )
        | kw
    )


def test_prosumer_page_load_forecast_band_baseline_orders_settlements_and_commands(chdb_client, tables):
    readings = [  # meter a: 2 kW then 3 kW; meter b: 1 kW; meter c belongs to another prosumer
        ("a", "p1", NOW - 55_000, 2000.0),
        ("a", "p1", NOW - 25_000, 3000.0),
        ("b", "p1", NOW - 35_000, 1000.0),
        ("c", "p2", NOW - 25_000, 9000.0),
        ("a", "p1", NOW - 5_000, 8000.0),  # within the newest 15 s: held back until its peers have landed
    ]
    _fill(
        chdb_client,
        tables["measurements"],
        "Measurement",
        ["device_id", "quantity", "phase", "ts"],
        [
            dict(
                event_id=f"m{i}",
                device_id=d,
                prosumer_id=p,
                quantity="P_ACTIVE",
                phase="TOTAL",
                unit="W",
                value=v,
                ts=t,
            )
            for i, (d, p, t, v) in enumerate(readings)
        ],
    )
    slot = NOW // (15 * MIN) * (15 * MIN)
    _fill(
        chdb_client,
        tables["forecasts"],
        "Forecast",
        ["entity_id", "property", "prediction_granularity", "issued_at"],  # the sink's key (topology.yaml)
        [
            dict(
                event_id=f"f{v}",
                entity_id="p1",
                property="ENERGY_CONSUMPTION",
                profile_granularity_minutes=15,
                issued_at=NOW - v * MIN,
                points=[{"ts": slot, "value": 250.0 * v, "lower": 200.0 * v, "upper": 300.0 * v}],
            )
            for v in (1, 2)  # the newer issue (v=1) wins
        ]
        + [  # also over an older day-ahead profile of 60-min steps sharing the slot's start (one point there)
            dict(
                event_id="dayahead",
                entity_id="p1",
                property="ENERGY_CONSUMPTION",
                prediction_granularity="DAYAHEAD",
                profile_granularity_minutes=60,
                issued_at=NOW - 3 * MIN,
                points=[{"ts": slot, "value": 4000.0, "lower": 3000.0, "upper": 5000.0}],
            )
        ]
        + [  # the meters measure net power: the forecast is consumption minus production
            dict(
                event_id="prod",
                entity_id="p1",
                property="ENERGY_PRODUCTION",
                profile_granularity_minutes=15,
                issued_at=NOW - MIN,
                points=[{"ts": slot, "value": 50.0, "lower": 25.0, "upper": 75.0}],
            )
        ],
    )
    _fill(
        chdb_client,
        tables["baselines"],
        "Baseline",
        ["prosumer_id", "isp_start", "version"],
        [
            dict(
                event_id="b",
                prosumer_id="p1",
                isp_start=slot,
                isp_end=slot + 15 * MIN,
                baseline_kw=1.5,
                adjustment_kw=0.5,
                version=1,
            )
        ],
    )
    allocs = [
        dict(prosumer_id=p, slot_start=slot + j * 15 * MIN, kw=1.0, baseline_kw=2.0)
        for p in ("p1", "p2")
        for j in range(2)
    ]
    _fill(
        chdb_client,
        tables["flex_orders"],
        "FlexOrder",
        ["order_id", "revision"],
        [
            dict(
                event_id="o1", order_id="o1", revision=0, status="ACTIVE", allocations=allocs, created_at=NOW
            ),
            dict(
                event_id="o2",
                order_id="o2",
                revision=0,
                status="ACTIVE",
                allocations=allocs[2:],
                created_at=NOW,
            ),
        ],
    )
    _fill(
        chdb_client,
        tables["settlement_flex"],
        "Settlement",
        ["settlement_id"],
        [_settlement(1, "p1", -240_000), _settlement(2, "p1", 40_000), _settlement(3, "p2", 10_000)],
        version="version",
    )
    _fill(
        chdb_client,
        tables["device_commands"],
        "DeviceCommand",
        ["device_id", "command_id"],
        [
            dict(
                command_id=f"c{i}",
                device_id="ev1",
                prosumer_id="p1",
                action="SET_CURRENT_A",
                value=16.0,
                valid_from=NOW - i * MIN,
            )
            for i in range(2)
        ],
    )
    _fill(
        chdb_client,
        tables["device_command_results"],
        "DeviceCommandResult",
        ["device_id", "command_id"],
        [dict(command_id="c0", device_id="ev1", status="EXECUTED", executed_at=NOW)],
        version="executed_at",
    )
    p = PAGES["prosumer"](_src(chdb_client, tables), "p1")
    stats = _stats(p)
    assert stats["meters reporting"] == "2 of 2" and stats["load now"] == 4.0  # 3 kW (a) + 1 kW (b), not c
    assert stats["orders"] == 1 and stats["settled"] == -0.2 and stats["device commands"] == 2
    (chart,) = [b for b in p["blocks"] if b["kind"] == "series"]
    lines = {s["name"]: s["points"] for s in chart["series"]}
    # (250 - 50) Wh / 15 min; upper (300 - 25) Wh, lower (200 - 75) Wh
    assert lines["forecast"] == [[slot, 0.8]] and lines["forecast upper"] == [[slot, 1.1]]
    assert lines["forecast lower"] == [[slot, 0.5]] and lines["baseline"] == [[slot, 2.0]]
    assert chart["band"] == ["forecast upper", "forecast lower"]
    tbl = _tables(p)
    (order,) = tbl["Flexibility orders"]
    assert (
        order["order_id"]["href"] == "/page/order/o1"
        and order["slots"] == 2
        and order["kw_over_slots"] == 2.0
    )
    assert sorted(r["amount"] for r in tbl["Settlements"]) == [-0.24, 0.04]
    assert [(r["command_id"], r["result"]) for r in tbl["Device commands"]] == [
        ("c0", "EXECUTED"),
        ("c1", "PENDING"),
    ]
    with pytest.raises(NotFound):
        PAGES["prosumer"](_src(chdb_client, tables), "nobody")


def test_step_curves_demand_from_the_highest_price_supply_from_the_lowest():
    book = [BookOrder("BID", 1000, 0.2), BookOrder("BID", 500, 0.3), BookOrder("OFFER", 2000, 0.1)]
    assert step_curve(book, "BID") == [[0.0, 0.3], [0.5, 0.2], [1.5, 0.2]]
    assert step_curve(book, "OFFER") == [[0.0, 0.1], [2.0, 0.1]]
    assert step_curve([], "BID") == []


def test_market_slot_page_curves_price_and_trades(chdb_client, tables):
    _fill(
        chdb_client,
        tables["market_clearing"],
        "ClearingResult",
        ["session_id"],
        [
            dict(
                event_id="c",
                session_id="s1",
                slot_start=NOW,
                price_micro_per_kwh=150_000,
                cleared_wh=1500,
                n_trades=2,
            )
        ],
    )
    orders = [
        ("b1", "p1", "BID", 1000, 200_000),
        ("b2", "p2", "BID", 500, 300_000),
        ("o1", "p3", "OFFER", 2000, 100_000),
    ]
    _fill(
        chdb_client,
        tables["market_orders_accepted"],
        "MarketOrder",
        ["session_id", "order_id"],
        [
            dict(
                event_id=o,
                order_id=o,
                participant_id=p,
                session_id="s1",
                side=side,
                quantity_wh=q,
                limit_price_micro_per_kwh=px,
            )
            for o, p, side, q, px in orders
        ],
    )
    _fill(
        chdb_client,
        tables["market_trades"],
        "Trade",
        ["session_id", "trade_id"],
        [
            dict(
                event_id=f"t{i}",
                trade_id=f"t{i}",
                session_id="s1",
                buyer_id=b,
                seller_id="p3",
                quantity_wh=q,
                price_micro_per_kwh=150_000,
            )
            for i, (b, q) in enumerate((("p1", 1000), ("p2", 500)))
        ],
    )
    p = PAGES["slot"](_src(chdb_client, tables), "s1")
    stats = _stats(p)
    assert stats["clearing price"] == 0.15 and stats["cleared"] == 1.5 and stats["traded"] == 1.5
    assert (stats["bids"], stats["offers"], stats["trades"]) == (2, 1, 2)
    (chart,) = [b for b in p["blocks"] if b["kind"] == "series"]
    lines = {s["name"]: s["points"] for s in chart["series"]}
    assert chart["x_unit"] == "kWh" and lines["demand (bids)"] == [[0.0, 0.3], [0.5, 0.2], [1.5, 0.2]]
    assert lines["clearing price"] == [[0.0, 0.15], [1.5, 0.15]]
    assert _tables(p)["Trades"][0]["buyer_id"]["href"] == "/page/prosumer/p1"
    with pytest.raises(NotFound):
        PAGES["slot"](_src(chdb_client, tables), "nope")


def test_anchor_window_page_records_root_transaction_and_verification(chdb_client, tables):
    window = "2026-11-23T10:15Z/15m"
    _fill(
        chdb_client,
        tables["chain_anchors"],
        "AnchorReceipt",
        ["kind", "window_id"],
        [
            dict(
                event_id="a",
                kind="FLEX",
                window_id=window,
                merkle_root="0xabc",
                record_count=2,
                tx_hash="0xt",
                block_number=7,
            )
        ],
    )
    _fill(
        chdb_client,
        tables["chain_anchor_leaves"],
        "AnchorLeaf",
        ["kind", "window_id", "settlement_id"],
        [dict(kind="FLEX", window_id=window, settlement_id=f"s{i}", leaf=f"0x{i}") for i in (1, 2, 9)],
    )
    _fill(
        chdb_client,
        tables["settlement_flex"],
        "Settlement",
        ["settlement_id"],
        [_settlement(1, "p1", -240_000), _settlement(2, "p2", 40_000)],
        version="version",
    )
    p = PAGES["anchor"](_src(chdb_client, tables), f"FLEX/{window}")
    stats = _stats(p)
    assert stats["records on chain"] == 2 and stats["records in manifest"] == 3 and stats["block"] == 7
    assert stats["amount"] == -0.2 and "0xabc" in p["subtitle"]
    (verify,) = [b for b in p["blocks"] if b["kind"] == "verify"]
    assert verify["url"] == "/api/verify?kind=FLEX&window=2026-11-23T10%3A15Z%2F15m"
    recs = _tables(p)["Records"]
    assert [r["settlement_id"] for r in recs] == ["s1", "s2", "s9"]
    assert (
        recs[0]["party_id"]["href"] == "/page/prosumer/p1"
        and recs[0]["reference_id"]["href"] == "/page/order/o1"
    )
    assert recs[2]["party_id"] == "" and _tables(p)["Chain transaction"][0]["tx_hash"] == "0xt"
    with pytest.raises(NotFound):
        PAGES["anchor"](_src(chdb_client, tables), f"MARKET/{window}")
    with pytest.raises(NotFound, match="KIND/window_id"):
        PAGES["anchor"](_src(chdb_client, tables), "FLEX")
