import json

from typer.testing import CliRunner

from streams.vpp.cli import app

PORTFOLIO = [
    {
        "asset_id": "bess",
        "kind": "BESS",
        "p_max_kw": 50,
        "energy_kwh": 100,
        "soc_pct": 60,
        "soc_min_pct": 10,
        "response_time_s": 0.5,
        "directions": ["UP", "DOWN"],
    },
    {"asset_id": "load", "kind": "CURTAILABLE_LOAD", "p_max_kw": 5, "current_kw": 5, "response_time_s": 30},
    {"asset_id": "hydro", "kind": "GENERATOR", "p_max_kw": 50, "current_kw": 40},
]


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_capability_command(tmp_path):
    f = tmp_path / "pf.json"
    f.write_text(json.dumps(PORTFOLIO))
    r = CliRunner().invoke(app, ["capability", str(f), "--service", "EFR", "--start-ms", "1717416000000"])
    assert r.exit_code == 0, r.output
    out = _last_json(r.output)
    assert out["capacity_kw"] == 60.0  # BESS 50 + hydro headroom 50 - 40
    assert {e["asset_id"]: e["reason"] for e in out["excluded"]} == {"load": "RESPONSE_TIME"}


def test_export_command(tmp_path):
    f = tmp_path / "pf.json"
    f.write_text(json.dumps(PORTFOLIO))
    args = [
        "export",
        str(f),
        "--res-p50-kw",
        "120",
        "--res-p10-kw",
        "90",
        "--load-kw",
        "90",
        "--price",
        "0.18",
        "--now-ms",
        "1717416000000",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = _last_json(r.output)
    # 120/90 RES + hydro 50 + load 5 - 90
    assert (out["export_p50_kw"], out["export_p10_kw"], out["decision"]) == (85.0, 55.0, "OFFER")
    assert out["slot_start"] == 1717416000000 + 3_600_000


def test_unknown_asset_field_rejected(tmp_path):
    f = tmp_path / "pf.json"
    f.write_text(json.dumps([{"asset_id": "x", "kind": "PV", "p_max_kw": 1, "colour": "red"}]))
    r = CliRunner().invoke(app, ["capability", str(f)])
    assert r.exit_code != 0
