"""`edream vpp asset ...` validation (dry runs, no broker) and offline evaluation of YAML portfolio files."""

from __future__ import annotations

import json
import time

from typer.testing import CliRunner

from streams.validation.vpp import check_capability_request
from streams.vpp.cli import app

PF = """\
vpp_id: vpp-x
assets:
  - {asset_id: bess, kind: BESS, p_max_kw: 50, energy_kwh: 100, soc_pct: 60, response_time_s: 0.5,
     directions: [UP, DOWN]}
  - {asset_id: hydro, kind: GENERATOR, p_max_kw: 50, current_kw: 40}
"""


def _last(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_asset_add_dry_run_prints_the_record():
    args = ["asset", "add", "pv-1", "--vpp-id", "v", "--kind", "PV", "--p-max-kw", "8", "--dry-run"]
    r = CliRunner().invoke(
        app, [*args, "--set", "forecast_entity_id=prosumer-003", "--set", "directions=[UP,DOWN]"]
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.output.splitlines()[0])
    assert (rec["asset_id"], rec["kind"], rec["forecast_entity_id"], rec["directions"]) == (
        "pv-1",
        "PV",
        "prosumer-003",
        ["DOWN", "UP"],
    )
    assert _last(r.output) == {"assets": ["pv-1"], "published": 0}


def test_asset_add_refuses_an_invalid_field_by_name():
    args = ["asset", "add", "b", "--vpp-id", "v", "--kind", "BESS", "--p-max-kw", "8", "--set", "soc_pct=140"]
    r = CliRunner().invoke(app, [*args, "--dry-run"])
    assert r.exit_code == 2
    assert "asset 'b': field 'soc_pct': Input should be less than or equal to 100" in r.output


def test_asset_load_validates_the_whole_file_first(tmp_path):
    f = tmp_path / "pf.yaml"
    f.write_text(PF)
    r = CliRunner().invoke(app, ["asset", "load", str(f), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert _last(r.output)["assets"] == ["bess", "hydro"]
    f.write_text(PF + "  - {asset_id: bad, kind: PV, p_max_kw: 1, colour: red}\n")
    r = CliRunner().invoke(app, ["asset", "load", str(f)])
    assert r.exit_code == 2 and f"{f}: assets[2] 'bad': field 'colour'" in r.output


def test_offline_capability_reads_a_yaml_portfolio(tmp_path):
    f = tmp_path / "pf.yaml"
    f.write_text(PF)
    r = CliRunner().invoke(app, ["capability", str(f), "--service", "EFR", "--start-ms", "1717416000000"])
    assert r.exit_code == 0, r.output
    assert _last(r.output)["capacity_kw"] == 60.0  # BESS 50 + hydro headroom 10


def test_platform_capability_request_is_stamped_now_and_passes_the_stage_checks():
    """The request's ``requested_at`` is its event time: the stage refuses one ahead of its clock by more than
    the skew (5 min); stamping it with the window start (up to 15 min ahead) got it dead-lettered."""
    before = int(time.time() * 1000)
    r = CliRunner().invoke(app, ["capability", "--vpp-id", "v", "--service", "EFR", "--dry-run"])
    assert r.exit_code == 0, r.output
    rec = _last(r.output)
    assert before <= rec["requested_at"] <= int(time.time() * 1000) < rec["window_start"]
    assert rec["window_start"] % (15 * 60_000) == 0 and rec["request_id"].startswith("v/EFR/")
    assert check_capability_request(rec, before) == []


def test_platform_capability_refuses_a_lead_time():
    r = CliRunner().invoke(app, ["capability", "--lead-s", "60", "--dry-run"])
    assert r.exit_code == 2 and "--lead-s is for offline evaluation" in r.output


def test_offline_export_needs_a_price(tmp_path):
    f = tmp_path / "pf.yaml"
    f.write_text(PF)
    r = CliRunner().invoke(app, ["export", str(f)])
    assert r.exit_code == 2 and "--price is required" in r.output
