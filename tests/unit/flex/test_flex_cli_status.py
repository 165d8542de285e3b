from __future__ import annotations

import json

from typer.testing import CliRunner

from streams.flex.cli import app, parse_time_ms
from streams.flex.requests import FlexRequest
from streams.flex.signing import request_signer
from streams.flex.status import order_status
from tools.sim.flex_scenario import SIM_DSO_KEY, sim_dso

T = 1_795_428_000_000


def test_parse_time():
    assert parse_time_ms("2026-11-23T10:00Z") == T
    assert parse_time_ms("2026-11-23T10:00:00") == T
    assert parse_time_ms(str(T)) == T


def test_request_dry_run_prints_the_signed_avro_record(tmp_path):
    key_file = tmp_path / "dso.key"
    key_file.write_text(SIM_DSO_KEY + "\n")
    r = CliRunner().invoke(
        app,
        [
            "request",
            "--key-file",
            str(key_file),
            "--area",
            "a1",
            "--start",
            "2026-11-23T10:00Z",
            "--kw",
            "60,50",
            "--direction",
            "INCREASE",
            "--request-id",
            "r1",
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output.strip().splitlines()[-1])
    assert rec["direction"] == "INCREASE" and rec["request_id"] == "r1"
    assert rec["slots"] == [{"slot_start": T, "kw": 60.0}, {"slot_start": T + 900_000, "kw": 50.0}]
    assert rec["deadline"] == T - 300_000
    assert request_signer(FlexRequest.from_avro(rec)) == sim_dso().eth_address


def test_dso_register_dry_run_derives_the_address_from_the_key(tmp_path):
    key_file = tmp_path / "dso.key"
    key_file.write_text(SIM_DSO_KEY)
    r = CliRunner().invoke(app, ["dso", "register", "dso-1", "--key-file", str(key_file), "--dry-run"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output.strip().splitlines()[0])
    assert (rec["dso_id"], rec["eth_address"], rec["active"]) == ("dso-1", sim_dso().eth_address, True)
    assert json.loads(r.output.strip().splitlines()[-1]) == {"published": 0, "dsos": ["dso-1"]}


def test_dso_register_and_load_refuse_bad_entries_naming_the_field(tmp_path):
    r = CliRunner().invoke(app, ["dso", "register", "dso-1", "--address", "0x12", "--dry-run"])
    assert r.exit_code == 2 and "DSO 'dso-1': field 'eth_address'" in r.output
    bad = tmp_path / "dsos.yaml"
    bad.write_text("dsos:\n  - {dso_id: d, eth_address: nope}\n")
    r = CliRunner().invoke(app, ["dso", "load", str(bad), "--dry-run"])
    assert r.exit_code == 2 and f"{bad}: dsos[0] 'd': field 'eth_address'" in r.output


def test_simulate_summary():
    r = CliRunner().invoke(
        app, ["simulate", "--prosumers", "30", "--deviators", "2", "--slots", "2", "--kw", "30"]
    )
    assert r.exit_code == 0, r.output
    s = json.loads(r.output.strip().splitlines()[-1])
    assert s["offer_status"] == "FULL" and s["dispatched"] == 10
    assert s["detected"] == s["deviators"] == ["p00", "p01"]
    # both shortfalls re-dispatched together when they show at the same reading step: one revision per step
    assert s["final_revision"] == 1 + len(s["detection_s_after_stop"]) == 2
    assert s["order_status"] == "COMPLETED"
    assert s["penalties_micro"] == 2 * 270_000  # each: 600 Wh short x 300_000 x 1.5


def test_order_status_latest_revision_and_verdicts():
    orders = [
        {
            "order_id": "o",
            "revision": 1,
            "status": "ACTIVE",
            "direction": "REDUCE",
            "allocations": [{"prosumer_id": "a", "slot_start": T, "kw": 2.0, "baseline_kw": 5.0}],
        },
        {
            "order_id": "o",
            "revision": 2,
            "status": "AMENDED",
            "direction": "REDUCE",
            "allocations": [
                {"prosumer_id": "a", "slot_start": T, "kw": 2.0, "baseline_kw": 5.0},
                {"prosumer_id": "b", "slot_start": T, "kw": 1.0, "baseline_kw": 5.0},
            ],
        },
        {"order_id": "other", "revision": 9, "status": "ACTIVE", "direction": "REDUCE", "allocations": []},
    ]
    devs = [
        {
            "order_id": "o",
            "prosumer_id": "a",
            "slot_start": T,
            "ts": T + 10,
            "kind": "PROJECTED",
            "delivered_kw": 0.5,
            "verdict": "SHORTFALL",
        },
        {
            "order_id": "o",
            "prosumer_id": "a",
            "slot_start": T,
            "ts": T + 900_000,
            "kind": "FINAL",
            "delivered_kw": 0.6,
            "verdict": "SHORTFALL",
        },
    ]
    stl = [{"reference_id": "o", "party_id": "a", "window_start": T, "amount_micro": -5}]
    s = order_status("o", orders, devs, stl)
    assert s["revision"] == 2 and s["status"] == "AMENDED" and s["deviating"] == ["a"]
    a, b = s["prosumers"]
    assert (a["delivered_kw"], a["final"], a["amount_micro"]) == (0.6, True, -5)
    assert (b["delivered_kw"], b["verdict"]) == (None, None)
    assert s["settled_micro"] == -5
    assert order_status("nope", orders, devs) is None
