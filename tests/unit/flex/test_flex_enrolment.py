from __future__ import annotations

import pytest

from streams.flex.enrolment import (
    AvailabilityWindow,
    Battery,
    ContractTerms,
    CurtailableLoad,
    EnrolmentError,
    EvCharger,
    ProsumerRecord,
    PvSystem,
    from_dict,
    to_dict,
)
from streams.flex.evaluation import evaluate
from streams.flex.model import Direction, SlotOutlook
from tools.sim.flex_scenario import T0

HOUR = 3_600_000


def record(**kw) -> ProsumerRecord:
    base = dict(
        prosumer_id="p1",
        area_id="a1",
        terms=ContractTerms(aggregator_id="agg", tolerance_range=0.1, multiplier=1.2),
        assets=(
            EvCharger("ev", max_current_a=32, nominal_current_a=16, phases=3),
            CurtailableLoad("hp", 2.0),
            PvSystem("pv", 6.0),
            Battery("bat", capacity_kwh=10.0, max_kw=5.0),
        ),
    )
    base.update(kw)
    return ProsumerRecord(**base)


@pytest.mark.parametrize("amps", [6, 65])
def test_ev_current_outside_7_64_rejected(amps):
    with pytest.raises(EnrolmentError):
        EvCharger("ev", max_current_a=max(amps, 7) if amps < 7 else amps, nominal_current_a=amps)


def test_ev_power_and_setpoint():
    ev = EvCharger("ev", max_current_a=32, nominal_current_a=16, phases=3)
    assert ev.power_kw(16) == pytest.approx(11.04)  # 16 A x 230 V x 3
    assert ev.current_for_kw(0) == 0
    assert ev.current_for_kw(1.0) == 7  # clamped to the 7 A minimum
    assert ev.current_for_kw(100.0) == 32  # clamped to the charger maximum
    assert ev.current_for_kw(ev.power_kw(20)) == 20


def test_evaluation_sums_assets_per_direction():
    o = SlotOutlook(baseline_kw=4.0, pv_kw_per_kwp=0.5, battery_soc=0.5)
    cap = evaluate(record(connection_kw=50.0), T0, 15, o)
    # down: EV nominal 11.04 + load 2 + battery min(5, (0.5-0.1)*10/0.25 = 16) = 5
    assert cap.down_kw == pytest.approx(11.04 + 2.0 + 5.0)
    # up: EV 32A-16A = 11.04 + PV curtail 3 + battery 5
    assert cap.up_kw == pytest.approx(11.04 + 3.0 + 5.0)


def test_connection_limit_and_unplugged_ev():
    o = SlotOutlook(baseline_kw=10.0, ev_connected=False)
    cap = evaluate(record(connection_kw=12.0), T0, 15, o)
    assert cap.up_kw == pytest.approx(2.0)  # 12 kW connection - 10 kW baseline
    assert cap.down_kw == pytest.approx(2.0 + 5.0)  # no EV


def test_availability_windows_per_direction_and_midnight_wrap():
    night = AvailabilityWindow(22 * 60, 6 * 60)
    assert night.covers(T0 - 10 * HOUR + 23 * HOUR, 15, Direction.REDUCE)  # 23:00
    assert night.covers(T0 - 10 * HOUR + 2 * HOUR, 15, Direction.REDUCE)  # 02:00
    assert not night.covers(T0, 15, Direction.REDUCE)  # 10:00
    assert not AvailabilityWindow(10 * 60, 10 * 60 + 10).covers(T0, 15, Direction.REDUCE)  # slot sticks out
    up_only = record(availability=(AvailabilityWindow(0, 1440, Direction.INCREASE),))
    cap = evaluate(up_only, T0, 15, SlotOutlook(baseline_kw=1.0, pv_kw_per_kwp=0.5))
    assert cap.down_kw == 0.0 and cap.up_kw > 0


def test_terms_hash_is_deterministic_and_binds_terms():
    r = record()
    assert r.terms_hash() == record().terms_hash()
    assert len(r.terms_hash()) == 64 and len(r.terms_hash("keccak256")) == 64
    assert r.terms_hash() != r.terms_hash("keccak256")
    changed = record(terms=ContractTerms(aggregator_id="agg", tolerance_range=0.15, multiplier=1.2))
    assert changed.terms_hash() != r.terms_hash()
    doc = r.contract_document()
    assert doc["tolerance_ppm"] == 100_000 and doc["multiplier_ppm"] == 1_200_000


def test_registry_record_round_trip():
    r = record(availability=(AvailabilityWindow(60, 120, Direction.REDUCE),))
    back = from_dict(to_dict(r))
    assert back == r and back.terms_hash() == r.terms_hash()
    with pytest.raises(EnrolmentError):
        from_dict({**to_dict(r), "assets": [{"kind": "NUCLEAR", "asset_id": "x"}]})


def test_bad_terms_rejected():
    with pytest.raises(EnrolmentError):
        ContractTerms(aggregator_id="a", tolerance_range=1.5)
    with pytest.raises(EnrolmentError):
        ContractTerms(aggregator_id="a", multiplier=0)
    with pytest.raises(EnrolmentError):
        ContractTerms(aggregator_id="a", baseline_method="GUESS")


def test_enrolment_event_round_trip_and_tamper_detection():
    from edream.serde import Serde
    from streams.flex.enrolment import enrolment_event, record_from_event

    r = record()
    ev = enrolment_event(r, updated_at=T0)
    serde = Serde()
    name, decoded = serde.decode(serde.encode("FlexEnrolment", ev))
    assert name == "FlexEnrolment" and record_from_event(decoded) == r
    assert decoded["terms_hash"] == r.terms_hash() and decoded["terms_hash_keccak"] == r.terms_hash(
        "keccak256"
    )
    tampered = {
        **decoded,
        "record_json": decoded["record_json"].replace('"multiplier":1.2', '"multiplier":2.0'),
    }
    with pytest.raises(EnrolmentError, match="terms_hash"):
        record_from_event(tampered)
