"""The per-area flex stage with MemoryState, wired in-process to the per-prosumer stage: the same offers, orders
(re-dispatch revisions included), deviations and settlements as the single-process desk for the lifecycle scenario;
requests offered on the next tick, rejected requests and enrolments; state forgotten after retention."""

from __future__ import annotations

import dataclasses

import pytest

from edream.measurements import power_reading
from edream.runtime.contract import Emit, Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.flex.area_stage import AreaParams, FlexAreaProcessor
from streams.flex.decisions import decision_time
from streams.flex.desk import FlexDesk
from streams.flex.dso_view import DsoView
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import enrolment_event
from streams.flex.orders import FlexOrder
from streams.flex.outlook import OutlookBook
from streams.flex.prosumer_stage import FlexProsumerProcessor
from streams.flex.requests import RequestSlot
from streams.flex.signing import sign_request
from tools.sim.flex_scenario import (
    SLOT_MS,
    T0,
    Devices,
    baseline_record,
    dso_view,
    enrolment_view,
    pid,
    portfolio,
    prosumer,
    reduce_request,
    sim_dsos,
    stoppers,
)

SERDE = Serde()
NOW = T0 - 3_600_000
STEP_MS = 15_000
DEVIATORS = {pid(i) for i in range(5)}
DESK_TOPICS = {"flex.offers.v1", "flex.orders.v1", "platform.rejections.v1", "flex.allocations.v1"}


class Pipeline:
    """The two stages on MemoryState, each output routed at once to the stage that reads it (the lock-step a
    single process has), everything emitted kept in ``out`` as (topic, decoded record)."""

    def __init__(self, n: int, clock, params: AreaParams | None = None):
        enrolled = EnrolledRegistry(enrolment_view(portfolio(n), SERDE), SERDE)
        params = params or AreaParams(auto_accept=True)  # the single-process desk accepts at once too
        self.area = FlexAreaProcessor(SERDE, enrolled, DsoView(dso_view(SERDE), SERDE), {}, params, clock)
        self.prosumers = FlexProsumerProcessor(SERDE, enrolled, {}, clock=clock)
        self.area_state, self.prosumer_state = MemoryState(), MemoryState()
        self.out: list[tuple[str, dict]] = []
        self.offset = 0

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.offset += 1
        record = Record(topic, 0, self.offset, key, value, NOW)
        if topic in ("meter.readings.raw.v1", "flex.allocations.v1"):
            self.route(self.prosumers.on_record(record, self.prosumer_state))
        else:
            self.route(self.area.on_record(record, self.area_state))

    def metered(self, kw: float = 5.0, at: int = NOW) -> None:
        """Every prosumer's status: ``kw`` metered (the METERED baseline source), nothing delivered."""
        for p in self.area.enrolled.refresh().records.values():
            st = {
                "prosumer_id": p.prosumer_id,
                "area_id": p.area_id,
                "ts": at,
                "metered_kw": kw,
                "delivered": [],
            }
            self.send("flex.prosumer.status.v1", SERDE.encode("FlexProsumerStatus", st))

    def tick(self) -> None:
        self.tick_area()
        self.route(self.prosumers.on_tick(0, 0, self.prosumer_state))

    def tick_area(self) -> None:
        self.route(self.area.on_tick(0, 0, self.area_state))

    def route(self, emits: list[Emit]) -> None:
        for e in emits:
            self.out.append((e.topic, SERDE.decode(e.value)[1]))
            if e.topic in ("flex.allocations.v1", "flex.prosumer.status.v1", "flex.deviations.v1"):
                self.send(e.topic, e.value, e.key)

    def records(self, *topics: str) -> list[dict]:
        return [r for t, r in self.out if t in topics]


def request_bytes(req) -> bytes:
    return SERDE.encode("FlexRequest", req.to_avro())


def comparable(topic_records) -> set[tuple[str, str]]:
    return {(t, repr(sorted(r.items()))) for t, r in topic_records}


def test_same_offers_orders_deviations_and_settlements_as_the_single_process_desk():
    """50 prosumers, a signed 4 x 15-min reduction of 60 kW, 5 dispatched prosumers stop complying 3 minutes in:
    re-dispatch revisions, verdicts and settlements are those of FlexDesk, record for record."""
    registry = portfolio(50)
    book = OutlookBook(registry)  # the desk's outlook: 5 kW metered before the request, as the statuses say
    for r in registry.records.values():
        book.on_reading(r.prosumer_id, NOW, 5.0)
    desk = FlexDesk(registry, book, dsos=sim_dsos())
    wall = {"now": NOW}
    pipe = Pipeline(50, lambda: wall["now"])
    for r in portfolio(50).records.values():  # the flat 5 kW outlook of the desk, as metered status
        status = {
            "prosumer_id": r.prosumer_id,
            "area_id": r.area_id,
            "ts": NOW,
            "metered_kw": 5.0,
            "delivered": [],
        }
        pipe.send("flex.prosumer.status.v1", SERDE.encode("FlexProsumerStatus", status))
    pipe.send("flex.requests.v1", request_bytes(reduce_request()))
    assert pipe.out == []  # queued: offered on the next tick
    pipe.tick()
    [offer_out] = desk.submit(reduce_request(), NOW)
    [order_out] = desk.accept(offer_out.record["offer_id"], NOW)
    order_id = order_out.record["order_id"]
    old = [offer_out, order_out]
    devices = Devices([pid(i) for i in range(50)], stoppers(DEVIATORS, T0 + 180_000))
    end = T0 + 4 * SLOT_MS

    def order_for_step() -> FlexOrder:
        """Before each reading step: both re-dispatch the shortfalls of the step before, together."""
        old.extend(desk.redispatch_queued())
        pipe.tick_area()
        return desk.orders[order_id]

    for p, ts, kw in devices.readings(order_for_step, T0, end, STEP_MS):
        wall["now"] = max(wall["now"], ts)
        old += desk.on_reading(p, ts, kw)
        reading = power_reading(f"meter-{p}", ts, kw * 1000.0, prosumer_id=p)
        pipe.send("meter.readings.raw.v1", SERDE.encode("Measurement", reading))
    wall["now"] = end + 180_000
    old += desk.on_timer(wall["now"])
    pipe.tick()
    kept = (
        "flex.offers.v1",
        "flex.orders.v1",
        "flex.deviations.v1",
        "settlement.flex.v1",
        "device.commands.v1",
    )
    new = [(t, r) for t, r in pipe.out if t in kept]
    assert comparable(new) == comparable((o.topic, o.record) for o in old)
    orders = pipe.records("flex.orders.v1")
    # the deviators' shortfalls show at the first or second reading after they stop: one revision per reading step
    shortfall_steps = {d["ts"] for d in pipe.records("flex.deviations.v1") if d["kind"] == "PROJECTED"}
    assert [o["revision"] for o in orders] == list(range(1, 2 + len(shortfall_steps)))
    assert len(shortfall_steps) < len(DEVIATORS)
    assert len(pipe.records("settlement.flex.v1")) == len(desk.orders[order_id].allocations)
    assert pipe.records("platform.rejections.v1") == []
    # every revision reached the per-prosumer stage: the first deviator keeps only its running slot
    allocs = pipe.records("flex.allocations.v1")
    [p00] = [a for a in allocs if a["revision"] == 2 and a["prosumer_id"] == "p00"]
    assert [s["slot_start"] for s in p00["slots"]] == [T0]
    assert {a["revision"] for a in allocs} == {o["revision"] for o in orders}


def test_requests_are_checked_on_the_tick_duplicates_and_overlaps_rejected():
    wall = {"now": NOW}
    pipe = Pipeline(10, lambda: wall["now"])
    pipe.metered()
    mallory = dataclasses.replace(
        reduce_request(kw=6.0, request_id="req-m"), dso_id="dso-mallory", signature=None
    )
    forged = sign_request(dataclasses.replace(mallory, request_id="req-f"), "0x" + "11" * 32)
    bad = sign_request(
        dataclasses.replace(reduce_request(request_id="req-bad"), slots=(RequestSlot(T0, -5.0),)),
        "0x" + "11" * 32,
    )
    for req in (
        mallory,
        forged,
        reduce_request(kw=6.0),
        reduce_request(kw=6.0),
        reduce_request(kw=3.0, request_id="req-2"),
    ):
        pipe.send("flex.requests.v1", request_bytes(req))
    pipe.send(
        "flex.requests.v1", request_bytes(dataclasses.replace(bad, signature=reduce_request().signature))
    )
    pipe.tick()
    rejections = {(r["subject_id"], r["code"]) for r in pipe.records("platform.rejections.v1")}
    assert rejections == {
        ("req-m", "UNSIGNED_REQUEST"),
        ("req-f", "UNKNOWN_DSO"),
        ("req-1", "DUPLICATE_REQUEST"),
        ("req-2", "OVERLAPPING_ORDER"),
        ("req-bad", "BAD_SIGNATURE"),
    }
    assert [o["request_id"] for o in pipe.records("flex.offers.v1")] == ["req-1"]
    assert {a["prosumer_id"] for a in pipe.records("flex.allocations.v1")} == {"p00", "p01"}
    pipe.tick()  # the queue is empty: nothing twice
    assert len(pipe.records("flex.offers.v1", "platform.rejections.v1")) == 6


def test_a_request_is_decided_as_of_its_arrival_not_of_the_tick_that_offers_it():
    """A worker that ticks late (lag, rebalance, restart) makes the same offer and order, ``created_at``
    included, as one that ticked at once; a request whose delivery started before its tick is refused."""
    made = {}
    for late_ms in (0, 600_000):
        wall = {"now": NOW}
        pipe = Pipeline(10, lambda: wall["now"])  # noqa: B023 - used within the iteration
        pipe.metered()
        pipe.send("flex.requests.v1", request_bytes(reduce_request(kw=6.0)))  # arrives at NOW
        wall["now"] = NOW + late_ms
        pipe.tick()
        made[late_ms] = pipe.records("flex.offers.v1", "flex.orders.v1")
        assert [r["created_at"] for r in made[late_ms]] == [NOW, NOW]
    assert made[0] == made[600_000]
    pipe = Pipeline(10, lambda: T0 + 1)  # arrived at NOW, ticked after delivery began
    pipe.metered()
    pipe.send("flex.requests.v1", request_bytes(reduce_request(kw=6.0)))
    pipe.tick()
    assert [r["code"] for r in pipe.records("platform.rejections.v1")] == ["SLOT_IN_PAST"]


def test_decision_time_trusts_a_plausible_arrival_only():
    assert decision_time(1_000, 5_000, 10_000, 60_000) == 1_000
    assert decision_time(6_000, 5_000, 10_000, 60_000) == 5_000  # ahead of the wall clock
    assert decision_time(1_000, 100_000, 200_000, 60_000) == 100_000  # older than max_past_ms
    assert decision_time(1_000, 10_000, 10_000, 60_000) == 10_000  # delivery started


def test_undecodable_request_raises_for_the_dead_letter_and_leaves_no_state():
    pipe = Pipeline(3, lambda: NOW)
    with pytest.raises(DecodeError):
        pipe.send("flex.requests.v1", b"not avro at all")
    assert pipe.area_state.data == {}


def test_invalid_enrolment_gets_one_rejection_and_enrols_nobody():
    pipe = Pipeline(3, lambda: NOW)
    event = enrolment_event(prosumer(7), NOW) | {"terms_hash": "0" * 64}
    pipe.send("flex.enrolments.v1", SERDE.encode("FlexEnrolment", event), b"p07")
    good = SERDE.encode("FlexEnrolment", enrolment_event(prosumer(8), NOW))
    pipe.send("flex.enrolments.v1", good, b"p08")
    [rej] = pipe.records("platform.rejections.v1")
    assert (rej["subject_id"], rej["code"], rej["rejected_at"]) == ("p07", "INVALID_ENROLMENT", NOW)
    assert pipe.area_state.data == {}


def test_outlook_summaries_feed_the_offer_and_the_frozen_baseline():
    """METERED status, then a baseline for the first slot (X_OF_Y prefers it): the order freezes 4 kW there and
    the metered 6 kW in the slot without a baseline; an older status changes nothing."""
    pipe = Pipeline(2, lambda: NOW)
    for p in ("p00", "p01"):
        st = {"prosumer_id": p, "area_id": "terni-1", "ts": NOW, "metered_kw": 6.0, "delivered": []}
        pipe.send("flex.prosumer.status.v1", SERDE.encode("FlexProsumerStatus", st))
    older = {"prosumer_id": "p00", "area_id": "terni-1", "ts": NOW - 1, "metered_kw": 1.0, "delivered": []}
    pipe.send("flex.prosumer.status.v1", SERDE.encode("FlexProsumerStatus", older))
    baseline = baseline_record("p00", T0, 4.0, NOW)
    with pytest.raises(ValueError, match="'p00' reached area b'elsewhere'.*is in area terni-1"):
        pipe.send("baseline.15m.v1", SERDE.encode("Baseline", baseline), b"elsewhere")  # under a wrong key
    pipe.send("baseline.15m.v1", SERDE.encode("Baseline", baseline), b"terni-1")  # as the re-key routes it
    pipe.send("flex.requests.v1", request_bytes(reduce_request(kw=4.0, n_slots=2)))
    pipe.tick()
    [order] = pipe.records("flex.orders.v1")
    frozen = {(a["prosumer_id"], a["slot_start"]): a["baseline_kw"] for a in order["allocations"]}
    assert frozen[("p00", T0)] == 4.0 and frozen[("p00", T0 + SLOT_MS)] == 6.0


def test_state_is_forgotten_after_retention_and_the_tick_touches_only_due_keys():
    wall = {"now": NOW}
    pipe = Pipeline(5, lambda: wall["now"], AreaParams(auto_accept=True, retention_ms=3_600_000))
    pipe.metered()
    pipe.send("flex.requests.v1", request_bytes(reduce_request(kw=6.0, n_slots=1)))
    pipe.tick()
    keys = set(pipe.area_state.data)
    assert {k[:2] for k in keys} >= {"r:", "f:", "o:", "a:"} and "due" in keys
    wall["now"] = T0 + SLOT_MS + 3_600_000
    pipe.area.on_tick(0, 0, pipe.area_state)
    assert {k for k in pipe.area_state.data if not k.startswith("s:")} == {"due"} and pipe.area_state.data[
        "due"
    ] == b"{}"
