"""SMX payload parser against the spec's T77 example payload (seed-catalogue §3.2)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from connectors import smx
from connectors.models import Phase, Quality, Quantity, TsSource

EXAMPLE = Path(__file__).parents[3] / "tools" / "sim" / "spec_examples" / "smx_t77.json"


@pytest.fixture(scope="module")
def parsed() -> smx.SmxPayload:
    return smx.parse_payload(EXAMPLE.read_bytes())


def _val(parsed: smx.SmxPayload, name: str) -> float:
    v = parsed.fields[name].value
    assert v is not None
    return v


def test_k_suffix_and_zero_padding(parsed: smx.SmxPayload) -> None:
    assert _val(parsed, "Apparent Power 3-Phase") == pytest.approx(4280.0)
    assert _val(parsed, "Apparent Power Phase L1") == pytest.approx(1621.0)
    assert _val(parsed, "Frequency") == pytest.approx(50.049)
    assert parsed.fields["Apparent Power 3-Phase"].unit == "VA"


def test_energy_units_normalised_to_wh(parsed: smx.SmxPayload) -> None:
    f = parsed.fields["Received Active Energy"]
    assert f.unit == "Wh" and f.value == pytest.approx(7302436.2)
    assert parsed.fields["Q1 Reactive Energy"].unit == "varh"
    assert parsed.fields["Fundamental Reactive Power 3-Phase"].unit == "var"


def test_phase_sums_match_totals(parsed: smx.SmxPayload) -> None:
    p = [_val(parsed, f"Active Power Phase L{i}") for i in (1, 2, 3)]
    assert sum(p) == pytest.approx(_val(parsed, "Active Power 3-Phase"), abs=0.002)
    s = [_val(parsed, f"Apparent Power Phase L{i}") for i in (1, 2, 3)]
    assert sum(s) == pytest.approx(_val(parsed, "Apparent Power 3-Phase"), abs=1.5)
    q = [_val(parsed, f"Fundamental Reactive Power Phase L{i}") for i in (1, 2, 3)]
    assert sum(q) == pytest.approx(_val(parsed, "Fundamental Reactive Power 3-Phase"), abs=1.5)
    pf = _val(parsed, "Active Power 3-Phase") / _val(parsed, "Apparent Power 3-Phase")
    assert pf == pytest.approx(_val(parsed, "PF 3-Phase"), abs=0.001)
    assert _val(parsed, "Rms Voltage L1-L2") / _val(parsed, "Rms Voltage L1-N") == pytest.approx(
        math.sqrt(3), rel=0.01
    )


def test_na_is_null_and_bad(parsed: smx.SmxPayload) -> None:
    f = parsed.fields["THDI L4"]
    assert f.value is None and f.quality is Quality.BAD and f.raw == "n/a"
    assert parsed.fields["THDI L1"].quality is Quality.GOOD


def test_server_time_is_device_timestamp_utc(parsed: smx.SmxPayload) -> None:
    assert parsed.server_ts == 1559943878000  # 2019-06-07T21:44:38Z
    assert parsed.texts["Currents Sequence"] == "L1-L2-L3"


def test_readings_quantities_units_obis(parsed: smx.SmxPayload) -> None:
    rs = smx.to_readings(parsed, "BBB6038", poll_ts=1, prosumer_id="p1")
    by = {(r.quantity, r.phase): r for r in rs}
    assert len(by) == len(rs)  # one reading per quantity and phase
    p = by[(Quantity.P_ACTIVE, Phase.TOTAL)]
    assert (p.value, p.unit, p.obis_code, p.ts, p.ts_source) == (
        988.267,
        "W",
        "1-1:16.7.0",
        1559943878000,
        TsSource.DEVICE,
    )
    assert by[(Quantity.S_APPARENT, Phase.TOTAL)].value == pytest.approx(4280.0)
    assert by[(Quantity.E_IMPORT, Phase.TOTAL)].obis_code == "1-1:1.8.0"
    assert by[(Quantity.E_EXPORT, Phase.TOTAL)].value == pytest.approx(2573463.6)
    assert by[(Quantity.VOLTAGE_LN, Phase.L2)].obis_code == "1-1:52.7.0"
    assert by[(Quantity.VOLTAGE_LL, Phase.L31)].value == pytest.approx(412.432)
    assert by[(Quantity.CURRENT, Phase.N)].value == 0.0
    assert by[(Quantity.FREQUENCY, Phase.TOTAL)].obis_code == "1-1:14.7.0"
    assert all(r.prosumer_id == "p1" and r.device_id == "BBB6038" for r in rs)


def test_all_31_mappings_have_quantities_and_obis() -> None:
    assert len(smx.WALLYA_TO_LD01) == 31
    for path, ld01 in smx.WALLYA_TO_LD01.items():
        name = smx.short_name(path)
        assert name in smx.SMX_QUANTITIES, name
        obis = smx.ld01_to_obis(ld01)
        a_b, cde = obis.split(":")
        assert ld01 == f"LD01/{a_b}-{cde.replace('.', '-')}-255/{ld01.rsplit('/', 1)[1]}"


def test_wallya_prefixed_flat_payload_and_formatted_variant_loses_to_raw() -> None:
    payload = {
        "wallya1/ActiveFormatted Power 3-Phase/value": "001.000k",
        "wallya1/Active Power 3-Phase/value": "999.5",
        "wallya1/Frequency/value": "n/a",
    }
    rs = smx.to_readings(smx.parse_payload(json.dumps(payload)), "d", poll_ts=42)
    by = {r.quantity: r for r in rs}
    assert by[Quantity.P_ACTIVE].value == 999.5
    assert by[Quantity.P_ACTIVE].ts == 42 and by[Quantity.P_ACTIVE].ts_source is TsSource.POLL
    assert by[Quantity.FREQUENCY].value is None and by[Quantity.FREQUENCY].quality is Quality.BAD


def test_out_of_range_is_flagged_bad() -> None:
    rs = smx.to_readings(smx.parse_payload({"Frequency": {"unit": "Hz", "value": "500.0"}}), "d", poll_ts=1)
    assert rs[0].quality is Quality.BAD and rs[0].value == 500.0


def test_garbage_payloads() -> None:
    with pytest.raises(smx.SmxPayloadError):
        smx.parse_payload(b"\xff not json")
    with pytest.raises(smx.SmxPayloadError):
        smx.parse_payload("[1, 2]")
    p = smx.parse_payload(
        {"Frequency": {"unit": "furlongs", "value": "1"}, "Rms Current L1-N": {"value": "x"}}
    )
    assert p.fields["Frequency"].quality is Quality.BAD
    assert p.fields["Rms Current L1-N"].value is None


def test_only_restricts_parsed_fields_but_not_readings() -> None:
    full = smx.parse_payload(EXAMPLE.read_bytes())
    fast = smx.parse_payload(EXAMPLE.read_bytes(), smx.MAPPED_NAMES)
    assert "THDI L1" in full.fields and "THDI L1" not in fast.fields
    assert smx.to_readings(full, "d", 1) == smx.to_readings(fast, "d", 1)
