"""Poisoning cases of issue 14 on the flex stage's entry point (:class:`FlexStream`), without a broker.

Each failed on the code before validation at the door: a reading stamped in 2100 settled every open slot, a NaN
reading crashed the stage, a request created ten years ahead or with a slot in 2100 or asking for 1e12 kW was
offered (and dispatched). Now readings outside their contract are dead-lettered (``DecodeError`` for the loop)
before they reach any state, and the requests get a Rejection while nothing is offered or dispatched.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from edream.measurements import power_reading
from edream.serde import DecodeError, Serde
from streams.flex.desk import FlexDesk
from streams.flex.enrolment import CurtailableLoad, enrolment_event
from streams.flex.requests import RequestSlot
from streams.flex.service import TOPIC_ENROLMENTS, TOPIC_READINGS, TOPIC_REQUESTS, FlexStream
from streams.flex.sim import T0, flat_outlook, portfolio, prosumer, reduce_request, signed, sim_dsos

SERDE = Serde()
NOW = T0 - 3_600_000
YEAR_MS = 365 * 86_400_000
Y2100 = 4_102_444_800_000  # 2100-01-01T00:00Z, on the 15-min grid


class Clock:
    """The wall clock of the stage (UTC epoch ms), moved by the test."""

    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> int:
        return self.now


def stream_with_active_order() -> tuple[FlexStream, Clock]:
    """A flex stage with one accepted 4-slot order from T0; the wall clock is in its first slot."""
    clock = Clock(NOW)
    stream = FlexStream(SERDE, FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos()), clock=clock)
    stream.handle(TOPIC_REQUESTS, None, SERDE.encode("FlexRequest", reduce_request(kw=5.0).to_avro()), NOW)
    names = [SERDE.decode(v)[0] for _, _, v in stream.tick(NOW)]
    assert names == ["FlexOffer", "FlexOrder"]
    clock.now = T0 + 60_000
    return stream, clock


def reading(prosumer_id: str, ts: int, watts: float) -> bytes:
    return SERDE.encode(
        "Measurement", power_reading(f"meter-{prosumer_id}", ts, watts, prosumer_id=prosumer_id)
    )


def test_reading_stamped_in_2100_is_dead_lettered_and_settles_nothing():
    stream, clock = stream_with_active_order()
    open_before = stream.desk.engine.open_tracks
    assert open_before > 0
    with pytest.raises(DecodeError, match="ts"):
        stream.handle(TOPIC_READINGS, None, reading("p00", Y2100, 2000.0), clock.now)
    assert stream.desk.engine.open_tracks == open_before
    assert not stream.desk.settlements and not stream.desk.deviations
    # processing continues: a reading of now is used, and the slot timer of the wall clock settles nothing yet
    out = stream.handle(TOPIC_READINGS, None, reading("p00", clock.now, 2000.0), clock.now)
    out += stream.tick(clock.now)
    assert "Settlement" not in [SERDE.decode(v)[0] for _, _, v in out]
    assert stream.desk.engine.open_tracks == open_before


@pytest.mark.parametrize("watts", [math.nan, math.inf, -math.inf, 1e15])
def test_non_finite_or_absurd_reading_is_dead_lettered_not_a_crash(watts):
    stream, clock = stream_with_active_order()
    with pytest.raises(DecodeError, match="value"):
        stream.handle(TOPIC_READINGS, None, reading("p00", clock.now, watts), clock.now)
    assert (
        stream.handle(TOPIC_READINGS, None, reading("p00", clock.now + 5000, 2000.0), clock.now) is not None
    )


def test_reading_with_an_absurd_id_is_dead_lettered():
    stream, clock = stream_with_active_order()
    rec = power_reading("m" * 2000, clock.now, 2000.0, prosumer_id="p00")
    with pytest.raises(DecodeError, match="device_id"):
        stream.handle(TOPIC_READINGS, None, SERDE.encode("Measurement", rec), clock.now)


def submitted(req) -> list[tuple[str, dict]]:
    """Submit ``req`` at NOW through the stream; the decoded outputs of the next tick."""
    stream = FlexStream(SERDE, FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos()), clock=lambda: NOW)
    stream.handle(TOPIC_REQUESTS, None, SERDE.encode("FlexRequest", req.to_avro()), NOW)
    out = [SERDE.decode(v) for _, _, v in stream.tick(NOW)]
    assert not stream.desk.orders and not stream.desk.offers
    return out


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"created_at": NOW + 10 * YEAR_MS}, "EVENT_TIME_OUT_OF_BOUNDS"),
        ({"slots": (RequestSlot(Y2100, 5.0),)}, "BEYOND_HORIZON"),
        ({"slots": (RequestSlot(T0, 1e12),)}, "KW_TOO_LARGE"),
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
    stream = FlexStream(SERDE, FlexDesk(portfolio(0), flat_outlook, dsos=sim_dsos()), clock=lambda: NOW)
    out = stream.handle(TOPIC_ENROLMENTS, None, enrolment_bytes(asset), NOW)
    [(name, rej)] = [SERDE.decode(v) for _, _, v in out]
    assert name == "Rejection" and rej["code"] == "INVALID_ENROLMENT" and rej["reason"]
    assert "p07" not in stream.desk.registry
