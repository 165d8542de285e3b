"""VEN report values -> Measurements (scales, ids, idempotency, validation) and opt responses -> contract."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from connectors.openadr.config import Ven
from connectors.openadr.events import DispatchEvent, DispatchInterval
from connectors.openadr.responses import dr_event_response
from connectors.openadr.telemetry import to_measurements, wants_report
from streams.validation.measurement import check_measurement

VEN = Ven(ven_id="ven-1", ven_name="site-1", prosumer_id="p1", site_id="s1", devices={"main": "meter-1"})
T = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
NOW = int(T.timestamp() * 1000) + 1000


def test_only_real_power_in_watts_is_requested():
    assert wants_report("RealPower", "W", "k") and wants_report("RealPower", "W", "none")
    assert not wants_report("RealEnergy", "Wh", "none") and not wants_report("Status", None, None)
    assert not wants_report("RealPower", "W", "weird")


def test_scaled_power_becomes_a_valid_p_active_reading_in_watts_with_deterministic_ids():
    [rec] = to_measurements(VEN, "openadr-vtn", "main", "k", [(T, 2.5)], NOW)
    assert (rec["device_id"], rec["prosumer_id"], rec["site_id"], rec["quantity"], rec["unit"]) == (
        "meter-1",
        "p1",
        "s1",
        "P_ACTIVE",
        "W",
    )
    assert rec["value"] == 2500.0 and rec["ts"] == rec["seq"] == NOW - 1000 and rec["ts_source"] == "DEVICE"
    assert check_measurement(rec, NOW) == []
    assert (
        to_measurements(VEN, "openadr-vtn", "main", "k", [(T, 2.5)], NOW + 5)[0]["event_id"]
        == rec["event_id"]
    )
    assert to_measurements(VEN, "openadr-vtn", "pv", None, [(T, 1)], NOW)[0]["device_id"] == "ven-1.pv"


def test_a_ven_that_is_not_the_net_meter_reports_its_own_device_without_the_prosumer():
    ems = VEN.model_copy(update={"net_meter": False})
    [rec] = to_measurements(ems, "openadr-vtn", "site-ems", "none", [(T, 900.0)], NOW)
    assert (rec["device_id"], rec["prosumer_id"], rec["site_id"]) == ("ven-1.site-ems", None, "s1")
    assert check_measurement(rec, NOW) == []


@pytest.mark.parametrize(
    ("value", "code"), [(math.nan, "bad_quality"), ("12", "bad_quality"), (1e12, "value_out_of_range")]
)
def test_bad_values_fail_validation_with_a_reason(value, code):
    [rec] = to_measurements(VEN, "openadr-vtn", "main", "none", [(T, value)], NOW)
    assert check_measurement(rec, NOW)[0].code == code


def test_a_report_from_the_far_future_fails_validation():
    future = datetime(2027, 12, 5, tzinfo=UTC)
    [rec] = to_measurements(VEN, "openadr-vtn", "main", "none", [(future, 100.0)], NOW)
    assert [e.field for e in check_measurement(rec, NOW)] == ["ts"]


def test_opt_responses():
    event = DispatchEvent("o1~r2~p1", "o1", 2, "p1", (DispatchInterval(0, 15, -1.0),))
    rec = dr_event_response(event, "ven-1", "optOut", NOW)
    assert (rec["order_id"], rec["revision"], rec["prosumer_id"], rec["party_id"], rec["opt"]) == (
        "o1",
        2,
        "p1",
        "ven-1",
        "OPT_OUT",
    )
    assert (
        rec["event_id"]
        == "openadr/ven-1/o1~r2~p1/OPT_OUT"
        == dr_event_response(event, "ven-1", "optOut", 0)["event_id"]
    )
    with pytest.raises(ValueError, match="neither optIn nor optOut"):
        dr_event_response(event, "ven-1", "maybe", NOW)
