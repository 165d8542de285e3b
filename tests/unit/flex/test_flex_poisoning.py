"""Poisoning cases of issue 14 on the flex stages' processors (per prosumer: readings; per area: requests and
enrolments), without a broker.

Each failed on the code before validation at the door: a reading stamped in 2100 settled every open slot, a NaN
reading crashed the stage, a request created ten years ahead or with a slot in 2100 or asking for 1e12 kW was
offered (and dispatched). Now readings outside their contract raise ``DecodeError`` (the runtime dead-letters the
record) before they reach any state, and the requests get a Rejection while nothing is offered or dispatched.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from edream.measurements import power_reading
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.flex.allocations import allocation_outs
from streams.flex.area_stage import FlexAreaProcessor
from streams.flex.desk import FlexDesk
from streams.flex.dso_view import DsoView
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import CurtailableLoad, enrolment_event
from streams.flex.prosumer_stage import FlexProsumerProcessor
from streams.flex.requests import RequestSlot
from tools.sim.flex_scenario import (
    T0,
    dso_view,
    enrolment_view,
    flat_outlook,
    portfolio,
    prosumer,
    reduce_request,
    signed,
    sim_dsos,
)

SERDE = Serde()
NOW = T0 - 3_600_000
YEAR_MS = 365 * 86_400_000
Y2100 = 4_102_444_800_000  # 2100-01-01T00:00Z, on the 15-min grid
READINGS, REQUESTS, ENROLMENTS = "meter.readings.raw.v1", "flex.requests.v1", "flex.enrolments.v1"


class Clock:
    """The wall clock of the stage (UTC epoch ms), moved by the test."""

    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> int:
        return self.now


def record(topic: str, value: bytes) -> Record:
    return Record(topic, 0, 0, None, value, NOW)


def prosumers_with_active_order() -> tuple[FlexProsumerProcessor, MemoryState, Clock]:
    """The per-prosumer stage holding one accepted 4-slot order from T0; the wall clock is in its first slot."""
    desk = FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos())
    [offer] = desk.submit(reduce_request(kw=5.0), NOW)
    [order] = desk.accept(offer.record["offer_id"], NOW)
    clock = Clock(T0 + 60_000)
    proc = FlexProsumerProcessor(
        SERDE, EnrolledRegistry(enrolment_view(portfolio(5), SERDE), SERDE), {}, clock=clock
    )
    state = MemoryState()
    for out in allocation_outs(desk.orders[order.record["order_id"]]):
        proc.on_record(record("flex.allocations.v1", SERDE.encode(out.schema, out.record)), state)
    return proc, state, clock


def reading(prosumer_id: str, ts: int, watts: float) -> bytes:
    return SERDE.encode(
        "Measurement", power_reading(f"meter-{prosumer_id}", ts, watts, prosumer_id=prosumer_id)
    )


def test_reading_stamped_in_2100_is_dead_lettered_and_settles_nothing():
    proc, state, clock = prosumers_with_active_order()
    before = dict(state.data)
    with pytest.raises(DecodeError, match="ts"):
        proc.on_record(record(READINGS, reading("p00", Y2100, 2000.0)), state)
    assert state.data == before
    # processing continues: a reading of now is used, and the slot timer of the wall clock settles nothing yet
    out = proc.on_record(record(READINGS, reading("p00", clock.now, 2000.0)), state)
    out += proc.on_tick(clock.now, 0, state)
    assert "Settlement" not in [SERDE.decode(e.value)[0] for e in out]


@pytest.mark.parametrize("watts", [math.nan, math.inf, -math.inf, 1e15])
def test_non_finite_or_absurd_reading_is_dead_lettered_not_a_crash(watts):
    proc, state, clock = prosumers_with_active_order()
    before = dict(state.data)
    with pytest.raises(DecodeError, match="value"):
        proc.on_record(record(READINGS, reading("p00", clock.now, watts)), state)
    assert state.data == before
    assert proc.on_record(record(READINGS, reading("p00", clock.now + 5000, 2000.0)), state) is not None


def test_reading_with_an_absurd_id_is_dead_lettered():
    proc, state, clock = prosumers_with_active_order()
    rec = power_reading("m" * 2000, clock.now, 2000.0, prosumer_id="p00")
    with pytest.raises(DecodeError, match="device_id"):
        proc.on_record(record(READINGS, SERDE.encode("Measurement", rec)), state)


def area(n: int = 5) -> FlexAreaProcessor:
    enrolled = EnrolledRegistry(enrolment_view(portfolio(n), SERDE), SERDE)
    return FlexAreaProcessor(SERDE, enrolled, DsoView(dso_view(SERDE), SERDE), {}, clock=lambda: NOW)


def submitted(req) -> list[tuple[str, dict]]:
    """Submit ``req`` at NOW to the area desk; the decoded outputs of the next tick (nothing offered or kept)."""
    proc, state = area(), MemoryState()
    proc.on_record(record(REQUESTS, SERDE.encode("FlexRequest", req.to_avro())), state)
    out = [SERDE.decode(e.value) for e in proc.on_tick(NOW, 0, state)]
    assert not [k for k in state.data if k[:2] in ("r:", "f:", "o:", "a:")]
    return out


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"created_at": NOW + 10 * YEAR_MS}, "EVENT_TIME_OUT_OF_BOUNDS"),
        ({"slots": (RequestSlot(Y2100, 5.0),)}, "BEYOND_HORIZON"),
        ({"slots": (RequestSlot(T0, 1e12),)}, "KW_TOO_LARGE"),
        # kept until the next tick as JSON, NaN became null and every later tick of the partition failed
        ({"slots": (RequestSlot(T0, math.nan),)}, "NEGATIVE_KW"),
        ({"slots": (RequestSlot(T0, math.inf),)}, "KW_TOO_LARGE"),
        ({"deadline": Y2100}, "BEYOND_HORIZON"),
        ({"dso_id": "d" * 2000}, "UNKNOWN_DSO"),  # authentication comes first: no DSO has that id
    ],
)
def test_out_of_bounds_request_is_rejected_and_nothing_is_dispatched(change, code):
    out = submitted(signed(dataclasses.replace(reduce_request(kw=5.0), **change)))
    assert [name for name, _ in out] == ["Rejection"]
    assert out[0][1]["code"] == code and out[0][1]["reason"]


def enrolment_bytes(asset: CurtailableLoad) -> bytes:
    """A FlexEnrolment of p07 with ``asset``; its terms hash matches when the record can be hashed at all."""
    rec = dataclasses.replace(prosumer(7), assets=(asset,))
    try:
        event = enrolment_event(rec, NOW)
    except (ValueError, OverflowError):  # NaN/inf cannot be hashed: a hostile producer sends any hash
        event = enrolment_event(prosumer(7), NOW)
        doc = json.loads(event["record_json"])
        doc["assets"][0]["kw"] = asset.kw
        event["record_json"] = json.dumps(doc)
    return SERDE.encode("FlexEnrolment", event)


@pytest.mark.parametrize(
    "asset",
    [
        CurtailableLoad("load-x", math.nan),
        CurtailableLoad("load-x", math.inf),
        CurtailableLoad("load-x", 1e12),
        CurtailableLoad("x" * 300, 3.0),
    ],
)
def test_enrolment_with_unbounded_values_is_rejected_and_not_registered(asset):
    value = enrolment_bytes(asset)
    [emit] = area(0).on_record(Record(ENROLMENTS, 0, 0, b"p07", value, NOW), MemoryState())
    name, rej = SERDE.decode(emit.value)
    assert name == "Rejection" and rej["code"] == "INVALID_ENROLMENT" and rej["reason"]
    view = enrolment_view(portfolio(0), SERDE)
    view.put(b"p07", value)
    assert EnrolledRegistry(view, SERDE).get("p07") is None


def test_a_request_that_cannot_be_decided_is_rejected_and_later_ticks_go_on(monkeypatch):
    """A kept request whose decision fails (not an outage) gets a Rejection; the partition's next request is
    decided as usual (before, the failed tick was rolled back with the request kept, and every tick failed)."""
    import streams.flex.area_stage as area_stage

    proc, state = area(), MemoryState()
    bad = signed(dataclasses.replace(reduce_request(kw=5.0), request_id="req-bad"))
    proc.on_record(record(REQUESTS, SERDE.encode("FlexRequest", bad.to_avro())), state)
    real = area_stage.offer_for

    def failing(req, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if req.request_id == "req-bad":
            raise ZeroDivisionError("poisoned")
        return real(req, *args, **kwargs)

    monkeypatch.setattr(area_stage, "offer_for", failing)
    out = [SERDE.decode(e.value) for e in proc.on_tick(NOW, 0, state)]
    assert [(n, r["subject_id"], r["code"]) for n, r in out] == [("Rejection", "req-bad", "INVALID_FIELD")]
    assert "ZeroDivisionError: poisoned" in out[0][1]["reason"]
    good = signed(dataclasses.replace(reduce_request(kw=5.0), request_id="req-good"))
    proc.on_record(record(REQUESTS, SERDE.encode("FlexRequest", good.to_avro())), state)
    names = [SERDE.decode(e.value)[0] for e in proc.on_tick(NOW, 0, state)]
    assert "FlexOffer" in names, names
