"""``edream market clear`` / ``order --dry-run`` through Typer's runner: final line is the JSON result."""

from __future__ import annotations

import json

from eth_account import Account
from typer.testing import CliRunner

from streams.market.cli import app
from streams.market.market_order import MarketOrder
from streams.market.signing import verify_order

runner = CliRunner()
VECTOR_1_CSV = """order_id,participant_id,side,quantity_wh,price,client_ts
A1,A1,OFFER,2000,80000,1
A2,A2,sell,3000,100000,2
A3,A3,OFFER,5000,150000,3
B1,B1,BID,4000,200000,4
B2,B2,buy,3000,120000,5
B3,B3,BID,4000,90000,6
"""


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_clear_csv_uniform_and_pay_as_bid(tmp_path):
    f = tmp_path / "orders.csv"
    f.write_text(VECTOR_1_CSV)
    res = runner.invoke(app, ["clear", "--input", str(f)])
    assert res.exit_code == 0, res.output
    out = last_json(res.output)
    assert (out["price_micro_per_kwh"], out["cleared_wh"], out["n_trades"]) == (120_000, 5000, 3)
    assert out["fills"]["B2"] == 1000 and out["trades"][0]["buy_order_id"] == "B1"
    res = runner.invoke(app, ["clear", "-i", str(f), "--rule", "pay-as-bid", "--no-curves"])
    out = last_json(res.output)
    assert out["price_micro_per_kwh"] is None and out["rule"] == "PAY_AS_BID" and "demand_curve" not in out
    assert [t["price_micro_per_kwh"] for t in out["trades"]] == [140_000, 150_000, 110_000]


def test_clear_within_the_network_section_of_a_config(tmp_path):
    f, cfg = tmp_path / "orders.csv", tmp_path / "market.yaml"
    f.write_text(VECTOR_1_CSV)
    # A1 and A2 behind a transformer that lets 4 kW (1000 Wh per 15 min) out: A1 sells 1000 Wh, A3 (outside,
    # 150k) the 3000 Wh more B1 (200k) wants; B2 (120k) and B3 (90k) are below A3's limit
    cfg.write_text(
        "network:\n  congestion_points: [{id: T, import_kw: 0, export_kw: 4}]\n"
        "  participants: [{participant_id: A1, congestion_points: [T]}, {participant_id: A2, congestion_points: [T]}]\n"
    )
    res = runner.invoke(app, ["clear", "-i", str(f), "--config", str(cfg), "--no-curves"])
    assert res.exit_code == 0, res.output
    out = last_json(res.output)
    assert out["cleared_wh"] == 4000
    assert {k: out["fills"][k] for k in ("A1", "A2", "A3", "B1", "B2")} == {
        "A1": 1000,
        "A2": 0,
        "A3": 3000,
        "B1": 4000,
        "B2": 0,
    }
    net = out["network"]
    assert (net["status"], net["reference_cleared_wh"], net["zone_prices"]) == (
        "CONSTRAINED",
        5000,
        {"-": 150_000, "T": 80_000},
    )
    assert net["limits"][0]["binding"] == "EXPORT"
    assert (net["welfare_micro"], net["reference_welfare_micro"]) == (
        200 * 4000 - 80 * 1000 - 150 * 3000,
        200 * 4000 + 120 * 1000 - 80 * 2000 - 100 * 3000,
    )
    cfg.write_text("network:\n  congestion_points: [{id: T, import_kw: 0, export_kw: -4}]\n")
    res = runner.invoke(app, ["clear", "-i", str(f), "--config", str(cfg)])
    assert res.exit_code == 2 and "network.congestion_points[0] 'T': field 'export_kw'" in res.output


def test_clear_reports_bad_rows_with_line_numbers(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("order_id,participant_id,side,quantity_wh,price\nX,P,HOLD,1,1\n")
    res = runner.invoke(app, ["clear", "--input", str(f)])
    assert res.exit_code == 2 and "bad.csv:2" in res.output


def test_order_dry_run_signs_with_the_key_file(tmp_path):
    key = tmp_path / "key.hex"
    key.write_text("0x" + "33" * 32 + "\n")
    res = runner.invoke(
        app,
        [
            "order",
            "--key-file",
            str(key),
            "--participant",
            "P-7",
            "--side",
            "OFFER",
            "--slot",
            "2026-11-23T12:00Z",
            "--quantity-wh",
            "1500",
            "--price",
            "90000",
            "--nonce",
            "4",
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    out = last_json(res.output)
    rec = out["orders"][0]
    o = MarketOrder.from_avro(rec)
    assert o.address == Account.from_key("0x" + "33" * 32).address and verify_order(o, 31337)
    assert (o.session_id, o.quantity_wh, o.nonce, out["sent"]) == (
        "p2p-local/2026-11-23T12:00Z/15m",
        1500,
        4,
        False,
    )


def test_profile_dry_run_builds_one_order_per_nonzero_slot(tmp_path):
    key = tmp_path / "key.hex"
    key.write_text("0x" + "44" * 32)
    res = runner.invoke(
        app,
        [
            "profile",
            "--key-file",
            str(key),
            "--participant",
            "P-8",
            "--start",
            "2026-11-23T12:00Z",
            "--energy",
            "100,-50,0",
            "--prices",
            "1,2,3",
            "--first-nonce",
            "0",
            "--dry-run",
        ],
    )
    assert res.exit_code == 0, res.output
    assert [(r["side"], r["quantity_wh"]) for r in last_json(res.output)["orders"]] == [
        ("BID", 100),
        ("OFFER", 50),
    ]
