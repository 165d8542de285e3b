from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.jsonpath import MISSING, get_path, parse_timestamp
from connectors.values import normalise_unit, parse_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("004.280k", 4280.0),
        ("002573.4636", 2573.4636),
        ("1.5M", 1.5e6),
        ("-000.5", -0.5),
        (" 12 ", 12.0),
        (7, 7.0),
        (11.02, 11.02),
        ("n/a", None),
        ("N/A", None),
        ("", None),
        ("abc", None),
        ("1.2.3", None),
        ("nan", None),
        (float("inf"), None),
        (True, None),
        (None, None),
        ([1], None),
    ],
)
def test_parse_number(raw: object, expected: float | None) -> None:
    got = parse_number(raw)
    assert got == (pytest.approx(expected) if expected is not None else None)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_parse_number_k_suffix_roundtrip(x: float) -> None:
    assert parse_number(f"{x:012.4f}k") == pytest.approx(round(x, 4) * 1000, rel=1e-9, abs=1e-6)


def test_units() -> None:
    assert normalise_unit("kWh") == ("Wh", 1000.0)
    assert normalise_unit("VAr") == ("var", 1.0)
    assert normalise_unit(None) == ("1", 1.0)
    with pytest.raises(ValueError, match="furlong"):
        normalise_unit("furlong")


def test_get_path() -> None:
    doc = {"recharges": [{"kwTot": 11.02}], "a": {"b": "x"}}
    assert get_path(doc, "recharges.0.kwTot") == 11.02
    assert get_path(doc, "a.b") == "x"
    assert get_path(doc, "recharges.5.kwTot") is MISSING
    assert get_path(doc, "a.b.c") is MISSING


def test_timestamps() -> None:
    # SpotLink local time (Europe/Rome, CEST = UTC+2 in June)
    assert parse_timestamp("2019-06-24 08:17:08", "%Y-%m-%d %H:%M:%S", "Europe/Rome") == 1561357028000
    assert parse_timestamp("2019-06-24 08:17:08", "%Y-%m-%d %H:%M:%S", "UTC") == 1561364228000
    assert parse_timestamp("1537803600000") == 1537803600000
    assert parse_timestamp(1537803600, "epoch_s") == 1537803600000
    assert parse_timestamp("2018-09-08T00:00:00+00:00", "iso") == 1536364800000
    assert parse_timestamp("garbage", "iso") is None
    assert parse_timestamp(None) is None


@pytest.mark.parametrize("amps", [7, 8, 32, 64])
def test_set_power_accepts_7_to_64_integer_amps(amps: int) -> None:
    from connectors.http_poll import validate_power_amps

    assert validate_power_amps(amps) == amps


@pytest.mark.parametrize("amps", [6, 65, 0, -7, 16.5, "32", True, None])
def test_set_power_rejects(amps: object) -> None:
    from connectors.http_poll import validate_power_amps

    with pytest.raises(ValueError):
        validate_power_amps(amps)


def test_resource_url_encodes_json_in_path() -> None:
    from connectors.http_poll import resource_url

    url = resource_url("http://h/public/api/", 'ev/{"vehicleID":"1"}')
    assert url == "http://h/public/api/ev/%7B%22vehicleID%22:%221%22%7D"
