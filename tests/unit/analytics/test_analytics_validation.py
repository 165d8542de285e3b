"""Ingest validation: required fields, ranges, units, duplicates, dead-letter records."""

from __future__ import annotations

import math

import pytest

from streams.analytics.validation import DuplicateFilter, validate_measurement
from streams.deadletter import dead_letter

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


def test_unknown_quantity_other_passes_without_range():
    assert validate_measurement(good(quantity="OTHER", unit="xyz", value=1e30), now_ms=NOW).ok


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
