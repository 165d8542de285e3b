"""Ingest validation: required fields, ranges, units, duplicates, dead-letter records."""

from __future__ import annotations

import math

import pytest

from streams.analytics.validation import (
    DuplicateFilter,
    ValidationConfig,
    check_measurement,
    validate_measurement,
)
from streams.deadletter import dead_letter
from streams.validation.limits import Limits

NOW = 1_700_000_000_000


def good(**over):
    rec = {
        "event_id": "c/m1/P_ACTIVE/TOTAL/1",
        "device_id": "m1",
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": 1234.5,
        "unit": "W",
        "quality": "GOOD",
        "connector_id": "c",
        "ts": NOW - 1000,
        "seq": 1,
        "ingest_ts": NOW,
    }
    rec.update(over)
    return rec


def test_good_record_is_ok():
    v = validate_measurement(good(), now_ms=NOW)
    assert v.ok and bool(v) and v.code == ""


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"device_id": ""}, "missing_field"),
        ({"ts": None}, "missing_field"),
        ({"ts": 12}, "ts_out_of_range"),
        ({"ts": NOW + 3_600_000}, "ts_in_future"),
        ({"ts": 1.5e12}, "bad_type"),
        ({"value": None}, "null_value"),
        ({"value": math.nan}, "value_not_finite"),
        ({"value": "12"}, "bad_type"),
        ({"quality": "BAD"}, "bad_quality"),
        ({"unit": "kW"}, "unit_mismatch"),
        ({"value": 2e8}, "value_out_of_range"),
        ({"quantity": "FREQUENCY", "unit": "Hz", "value": 10.0}, "value_out_of_range"),
        ({"quantity": "E_IMPORT", "unit": "Wh", "value": -1.0}, "value_out_of_range"),
    ],
)
def test_invalid_records_have_reason(over, code):
    v = validate_measurement(good(**over), now_ms=NOW)
    assert not v.ok
    assert v.code == code
    assert v.reason


def test_quantity_other_needs_a_known_unit_and_a_bounded_value():
    assert validate_measurement(good(quantity="OTHER", unit="m3", value=12.5), now_ms=NOW).ok
    assert validate_measurement(good(quantity="OTHER", unit="xyz"), now_ms=NOW).code == "unknown_value"
    assert validate_measurement(good(quantity="OTHER", unit="W", value=1e30), now_ms=NOW).code == (
        "value_out_of_range"
    )


@pytest.mark.parametrize(
    ("over", "field", "code"),
    [
        ({"device_id": "d" * 2000}, "device_id", "too_long"),
        ({"event_id": "e" * 2000}, "event_id", "too_long"),
        ({"prosumer_id": "p" * 2000}, "prosumer_id", "too_long"),
        ({"connector_id": "c\x00\n"}, "connector_id", "bad_identifier"),
        ({"device_id": "ghost device"}, "device_id", "bad_identifier"),
        ({"quantity": "OTHER", "unit": "furlongs"}, "unit", "unknown_value"),
        ({"unit": "furlongs"}, "unit", "unit_mismatch"),
        ({"quantity": "WARP_FACTOR"}, "quantity", "unknown_value"),
        ({"phase": "L7"}, "phase", "unknown_value"),
        ({"ts": 4_102_444_800_000}, "ts", "ts_in_future"),  # 2100
        ({"ts": NOW - 100 * 365 * 86_400_000}, "ts", "ts_out_of_range"),
        ({"ts": NOW - 40 * 86_400_000}, "ts", "ts_too_old"),
        ({"value": math.inf}, "value", "value_not_finite"),
        ({"value": 1e15}, "value", "value_out_of_range"),
        ({"ingest_ts": 1.5}, "ingest_ts", "bad_type"),
    ],
)
def test_absurd_measurements_are_refused_naming_the_field(over, field, code):
    """Poisoning case (issue 14): absurd Measurements (2,000-character ids, unit "furlongs", timestamps a
    century apart, ghost ids) passed validation."""
    errors = check_measurement(good(**over), now_ms=NOW, cfg=ValidationConfig.from_limits(Limits()))
    assert [(e.field, e.code) for e in errors] == [(field, code)]
    assert errors[0].reason


def test_power_bound_comes_from_the_limits():
    cfg = ValidationConfig.from_limits(Limits(max_reading_kw=50.0))
    assert validate_measurement(good(value=-50_000.0), now_ms=NOW, cfg=cfg).ok
    assert validate_measurement(good(value=50_001.0), now_ms=NOW, cfg=cfg).code == "value_out_of_range"


def test_duplicate_filter_by_device_quantity_phase_ts():
    f = DuplicateFilter(capacity=2)
    a = good()
    assert not f.seen(a)
    assert f.seen(dict(a, value=99.0, event_id="other"))  # same identity, different payload: duplicate
    assert not f.seen(good(phase="L1"))
    assert not f.seen(good(quantity="E_IMPORT"))
    assert len(f) == 2
    assert not f.seen(a)  # evicted by capacity: passes again (aggregation absorbs it idempotently)


def test_dead_letter_record_keeps_original_bytes():
    dl = dead_letter(
        "meter.readings.raw.v1",
        3,
        42,
        b"m1",
        b"\x00garbage",
        "validation",
        "too big",
        error_type="value_out_of_range",
        failed_at=NOW,
    )
    assert dl["event_id"] == "meter.readings.raw.v1/3/42"
    assert dl["original"] == b"\x00garbage"
