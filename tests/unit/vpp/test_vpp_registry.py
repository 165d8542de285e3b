"""VPP asset registry: validation of file entries and records (errors name file, entry, field), the Avro record
round trip and the portfolio (latest updated_at wins, active=false removes)."""

from __future__ import annotations

import pytest

from edream.serde import Serde
from streams.vpp.assets import AssetKind, Direction
from streams.vpp.registry import (
    Portfolio,
    RegisteredAsset,
    RegistryError,
    asset_record,
    load_portfolio_file,
    registered_from_record,
    validate_spec,
)

T0 = 1_717_416_000_000

PORTFOLIO_YAML = """\
vpp_id: vpp-a
assets:
  - asset_id: bess-1
    kind: BESS
    p_max_kw: 100
    energy_kwh: 200
    soc_pct: 60
    soc_min_pct: 10
    response_time_s: 0.5
    directions: [UP, DOWN]
  - {asset_id: pv-1, kind: PV, p_max_kw: 8, forecast_entity_id: prosumer-003, uncertainty_min: 0.8,
     uncertainty_max: 1.2}
  - {asset_id: diesel, kind: GENERATOR, p_max_kw: 150, p_min_kw: 40, is_on: false, start_up_time_s: 300,
     ramp_kw_per_s: 2, marginal_cost_micro_per_kwh: 220000, vpp_id: vpp-b}
"""


def test_portfolio_file_is_validated_and_maps_to_assets(tmp_path):
    f = tmp_path / "pf.yaml"
    f.write_text(PORTFOLIO_YAML)
    specs = load_portfolio_file(f)
    assert [(s.asset_id, s.vpp_id) for s in specs] == [
        ("bess-1", "vpp-a"),
        ("pv-1", "vpp-a"),
        ("diesel", "vpp-b"),  # an entry's own vpp_id wins over the file's default
    ]
    bess = specs[0].to_asset()
    assert bess.kind == AssetKind.BESS and bess.directions == frozenset({Direction.UP, Direction.DOWN})
    assert (bess.energy_kwh, bess.soc_pct, bess.soc_min_pct) == (200.0, 60.0, 10.0)
    diesel = specs[2].to_asset()
    assert (diesel.is_on, diesel.start_up_time_s, diesel.ramp_kw_per_s) == (False, 300.0, 2.0)
    assert specs[1].forecast_entity_id == "prosumer-003"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{asset_id: x, kind: PV, p_max_kw: -1}", "assets[0] 'x': field 'p_max_kw': Input should be greater"),
        ("{asset_id: x, kind: NUCLEAR, p_max_kw: 1}", "assets[0] 'x': field 'kind': Input should be"),
        (
            "{asset_id: x, kind: PV, p_max_kw: 1, colour: red}",
            "field 'colour': Extra inputs are not permitted",
        ),
        ("{asset_id: x, kind: PV}", "field 'p_max_kw': Field required"),
        (
            "{asset_id: x, kind: GENERATOR, p_max_kw: 10, p_min_kw: 20}",
            "p_min_kw 20.0 is above p_max_kw 10.0",
        ),
        ("{asset_id: x, kind: BESS, p_max_kw: 10, energy_kwh: 20}", "needs both energy_kwh and soc_pct"),
        ("{asset_id: x, kind: BESS, p_max_kw: 10, energy_kwh: 20, soc_pct: 120}", "field 'soc_pct'"),
        ("{asset_id: x, kind: EVSE, p_max_kw: 10, curtailable_share: 2}", "field 'curtailable_share'"),
        ("{asset_id: x, kind: PV, p_max_kw: 1, directions: [SIDEWAYS]}", "field 'directions.0'"),
        ("{asset_id: x, kind: PV, p_max_kw: 1, directions: []}", "directions must name at least one"),
        ("just-a-string", "assets[0] '?': must be a mapping"),
    ],
)
def test_invalid_entry_names_file_entry_and_field(tmp_path, entry, expected):
    f = tmp_path / "pf.yaml"
    f.write_text(f"vpp_id: v\nassets:\n  - {entry}\n")
    with pytest.raises(RegistryError) as exc:
        load_portfolio_file(f)
    assert str(exc.value).startswith(f"{f}: ")
    assert expected in str(exc.value)


def test_file_level_errors(tmp_path):
    f = tmp_path / "pf.yaml"
    f.write_text("assets: [{asset_id: x, kind: PV, p_max_kw: 1}]\n")
    with pytest.raises(RegistryError, match=r"assets\[0\] 'x': field 'vpp_id': Field required"):
        load_portfolio_file(f)
    f.write_text(
        "vpp_id: v\nassets:\n  - {asset_id: x, kind: PV, p_max_kw: 1}\n  - {asset_id: x, kind: PV, p_max_kw: 2}\n"
    )
    with pytest.raises(RegistryError, match=r"assets\[1\] 'x': field 'asset_id': duplicate of assets\[0\]"):
        load_portfolio_file(f)
    f.write_text("vpp: v\nassets: []\n")
    with pytest.raises(RegistryError, match="unknown top-level key"):
        load_portfolio_file(f)
    f.write_text("assets: [\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_portfolio_file(f)
    with pytest.raises(RegistryError, match="cannot read"):
        load_portfolio_file(tmp_path / "missing.yaml")


def test_record_round_trips_through_avro_and_validates():
    spec = validate_spec(
        {"asset_id": "pv-1", "vpp_id": "v", "kind": "PV", "p_max_kw": 8, "forecast_entity_id": "p3"}, "cli"
    )
    rec = asset_record(spec, T0)
    assert rec["event_id"] == f"pv-1/{T0}" and rec["directions"] == ["UP"]
    serde = Serde()
    name, decoded = serde.decode(serde.encode("VppAsset", rec, "vpp.assets.v1"), "vpp.assets.v1")
    assert name == "VppAsset" and decoded == rec
    reg = registered_from_record(decoded)
    assert reg.spec == spec and reg.updated_at == T0


def test_invalid_record_is_refused_with_asset_and_field():
    spec = validate_spec({"asset_id": "g", "vpp_id": "v", "kind": "GENERATOR", "p_max_kw": 8}, "cli")
    rec = asset_record(spec, T0) | {"p_min_kw": 9.0}
    with pytest.raises(RegistryError, match="VppAsset 'g': field '.*': p_min_kw 9.0 is above p_max_kw 8.0"):
        registered_from_record(rec)


def _reg(asset_id: str, at: int, vpp: str = "v", active: bool = True, p_max: float = 10) -> RegisteredAsset:
    spec = validate_spec(
        {"asset_id": asset_id, "vpp_id": vpp, "kind": "PV", "p_max_kw": p_max, "active": active}, "t"
    )
    return RegisteredAsset(spec, at)


def test_portfolio_latest_wins_and_removal_sticks():
    pf = Portfolio()
    assert pf.upsert(_reg("a", T0, p_max=10))
    assert pf.upsert(_reg("b", T0, vpp="w"))
    assert pf.upsert(_reg("a", T0 + 2, p_max=12))
    assert not pf.upsert(_reg("a", T0 + 1, p_max=99))  # an older record replayed
    assert [a.p_max_kw for a in pf.assets("v")] == [12]
    assert pf.vpp_ids() == ["v", "w"]
    assert pf.upsert(_reg("a", T0 + 3, active=False))
    assert not pf.upsert(_reg("a", T0 + 2, p_max=12))  # replay after removal does not resurrect it
    assert pf.assets("v") == [] and pf.vpp_ids() == ["w"]
    assert pf.updated_at("v") == T0 + 3
