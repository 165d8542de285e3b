"""A utility's DR event -> FlexRequest: LOAD_DISPATCH scales, SIMPLE levels, slot splitting, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.openadr.utility_events import EventRefused, request_from_event

T = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
T_MS = int(T.timestamp() * 1000)
Q = 900_000


def event(name="LOAD_DISPATCH", kind="delta", payloads=((30, -4.0), (15, -2.0)), measurement=None, mod=0):
    intervals, t = [], T
    for minutes, value in payloads:
        intervals.append({"dtstart": t, "duration": timedelta(minutes=minutes), "signal_payload": value})
        t += timedelta(minutes=minutes)
    signal = {"signal_name": name, "signal_type": kind, "intervals": intervals}
    if measurement:
        signal["measurement"] = measurement
    return {"event_descriptor": {"event_id": "e1", "modification_number": mod}, "event_signals": [signal]}


def slots(req):
    return [(s.slot_start - T_MS, s.kw) for s in req.slots]


def test_load_dispatch_in_kw_splits_into_slots_and_reduces():
    req = request_from_event(event(), "u1", "a1", 5)
    assert (req.request_id, req.direction, req.deadline, req.created_at) == (
        "oadr~u1~e1~m0",
        "REDUCE",
        T_MS,
        5,
    )
    assert slots(req) == [(0, 4.0), (Q, 4.0), (2 * Q, 2.0)]
    assert request_from_event(event(mod=2), "u1", "a1", 5).request_id == "oadr~u1~e1~m2"


def test_load_dispatch_in_watts_and_increase_and_zero_intervals_skipped():
    req = request_from_event(
        event(payloads=((15, 0.0), (15, 1500.0)), measurement={"unit": "W", "scale": "none"}), "u1", "a1", 0
    )
    assert (req.direction, slots(req), req.deadline) == ("INCREASE", [(Q, 1.5)], T_MS + Q)


def test_simple_levels_map_to_configured_reductions():
    req = request_from_event(
        event("SIMPLE", "level", ((15, 1), (15, 3), (15, 0))), "u1", "a1", 0, simple_levels_kw=(1, 2, 5)
    )
    assert (req.direction, slots(req)) == ("REDUCE", [(0, 1.0), (Q, 5.0)])


@pytest.mark.parametrize(
    ("ev", "levels", "why"),
    [
        (event("ELECTRICITY_PRICE", "price"), (), "exactly one LOAD_DISPATCH or SIMPLE signal, has 0"),
        (event("LOAD_DISPATCH", "setpoint"), (), "is not understood"),
        (event("SIMPLE", "level", ((15, 2),)), (1.0,), "SIMPLE level 2.0 is not one of 0..1"),
        (event(payloads=((20, -1.0),)), (), "not a whole number of 15-minute slots"),
        (event(payloads=((15, -1.0), (15, 1.0))), (), "mixes reductions and increases"),
        (event(payloads=((15, 0.0),)), (), "no interval asks for a change"),
        (event(measurement={"unit": "A", "scale": "none"}), (), "is not a power in W"),
    ],
)
def test_events_that_cannot_be_requests_are_refused_with_the_reason(ev, levels, why):
    with pytest.raises(EventRefused, match=why):
        request_from_event(ev, "u1", "a1", 0, simple_levels_kw=levels)
