"""The per-prosumer flex stage (verification, settlement, set-points) with MemoryState: the same deviations and
settlements as the single-process desk for the same order and readings, poison readings leave no state, ticks close
slots without readings, and the re-key keeps only enrolled prosumers' net power readings."""

from __future__ import annotations

import math

import pytest

from edream.measurements import power_reading
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.flex.allocations import allocation_outs
from streams.flex.desk import FlexDesk
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import enrolment_event
from streams.flex.prosumer_stage import FlexProsumerProcessor
from streams.flex.reading_key import net_power_prosumer
from streams.validation.fields import InvalidRecord
from tools.sim.flex_scenario import (
    SLOT_MS,
    STEP_MS,
    T0,
    Devices,
    flat_outlook,
    pid,
    portfolio,
    reduce_request,
    sim_dsos,
    stoppers,
)

SERDE = Serde()
STOP_AT = T0 + 180_000
DEVIATORS = {pid(i) for i in range(5)}


class DictView:
    def __init__(self, items: dict[bytes, bytes]):
        self.data, self.version = items, 1

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def items(self):
        return list(self.data.items())


def enrolments(n: int) -> DictView:
    return DictView(
        {
            r.prosumer_id.encode(): SERDE.encode("FlexEnrolment", enrolment_event(r, T0 - 86_400_000))
            for r in portfolio(n).records.values()
        }
    )


def processor(n: int = 50, clock=None) -> FlexProsumerProcessor:
    return FlexProsumerProcessor(SERDE, EnrolledRegistry(enrolments(n), SERDE), {}, clock=clock)


def rec(topic: str, value: bytes, offset: int = 0) -> Record:
    return Record(topic, 0, offset, None, value, T0)


def reading(p: str, ts: int, kw: float) -> bytes:
    return SERDE.encode("Measurement", power_reading(f"meter-{p}", ts, kw * 1000.0, prosumer_id=p))


def decoded(emits) -> set[tuple[str, str]]:
    """(schema, event id or settlement id) of each emit, with its values, as comparable tuples."""
    out = set()
    for e in emits:
        name, r = SERDE.decode(e.value)
        out.add((e.topic, repr(sorted(r.items()))))
    return out


def test_same_verdicts_and_settlements_as_the_single_process_desk():
    desk = FlexDesk(portfolio(50), flat_outlook, dsos=sim_dsos(), redispatch=False)
    [offer] = desk.submit(reduce_request(), now=T0 - 3_600_000)
    [order_out] = desk.accept(offer.record["offer_id"], now=T0 - 1_800_000)
    order = desk.orders[order_out.record["order_id"]]
    proc, state = processor(clock=lambda: T0 + 10 * SLOT_MS), MemoryState()
    for out in allocation_outs(order):
        assert proc.on_record(rec("flex.allocations.v1", SERDE.encode(out.schema, out.record)), state) == []
    old, new = [], []
    devices = Devices([pid(i) for i in range(50)], stoppers(DEVIATORS, STOP_AT))
    for p, ts, kw in devices.readings(lambda: order, T0, T0 + 4 * SLOT_MS, STEP_MS * 3):
        old += desk.on_reading(p, ts, kw)
        new += proc.on_record(rec("meter.readings.raw.v1", reading(p, ts, kw)), state)
    old += desk.advance_to(T0 + 4 * SLOT_MS + 60_000)
    new += proc.on_tick(0, 0, state)  # the wall clock is far past: every slot closes
    new_outs = [e for e in new if not e.topic.startswith("flex.prosumer.status")]
    want = {(o.topic, repr(sorted(o.record.items()))) for o in old}
    assert decoded(new_outs) == {(t, v) for t, v in want}
    assert sum(1 for o in old if o.schema == "Settlement") == len(order.allocations)
    statuses = [SERDE.decode(e.value)[1] for e in new if e.topic == "flex.prosumer.status.v1"]
    assert {s["prosumer_id"] for s in statuses} == {pid(i) for i in range(50)}
    p00 = [s for s in statuses if s["prosumer_id"] == "p00" and s["delivered"]]
    assert p00 and all(d["kw"] >= 0 for s in p00 for d in s["delivered"])


def test_poison_reading_is_refused_before_any_state_and_stale_revisions_are_ignored():
    desk = FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos(), redispatch=False)
    [offer] = desk.submit(reduce_request(kw=6.0), now=T0 - 3_600_000)
    [order_out] = desk.accept(offer.record["offer_id"], now=T0 - 1_800_000)
    order = desk.orders[order_out.record["order_id"]]
    proc, state = processor(5, clock=lambda: T0), MemoryState()
    for out in allocation_outs(order):
        proc.on_record(rec("flex.allocations.v1", SERDE.encode(out.schema, out.record)), state)
    before = dict(state.data)
    bad = power_reading("meter-p00", T0, math.nan, prosumer_id="p00")
    with pytest.raises(InvalidRecord):
        proc.on_record(rec("meter.readings.raw.v1", SERDE.encode("Measurement", bad)), state)
    ahead = power_reading("meter-p00", T0 + 3_600_000, 1000.0, prosumer_id="p00")  # far ahead of the clock
    with pytest.raises(InvalidRecord):
        proc.on_record(rec("meter.readings.raw.v1", SERDE.encode("Measurement", ahead)), state)
    assert state.data == before
    replay = allocation_outs(order)[0]
    assert proc.on_record(rec("flex.allocations.v1", SERDE.encode(replay.schema, replay.record)), state) == []
    assert state.data == before


def test_tick_closes_slots_without_readings_and_forgets_old_orders():
    desk = FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos(), redispatch=False)
    [offer] = desk.submit(reduce_request(kw=6.0, n_slots=1), now=T0 - 3_600_000)
    [order_out] = desk.accept(offer.record["offer_id"], now=T0 - 1_800_000)
    order = desk.orders[order_out.record["order_id"]]
    wall = {"now": T0}
    proc, state = processor(5, clock=lambda: wall["now"]), MemoryState()
    for out in allocation_outs(order):
        proc.on_record(rec("flex.allocations.v1", SERDE.encode(out.schema, out.record)), state)
    assert proc.on_tick(0, 0, state) == []  # slot running, nothing measured, no charger to command
    wall["now"] = T0 + SLOT_MS + 120_000
    finals = [SERDE.decode(e.value)[1] for e in proc.on_tick(0, 0, state)]
    deviations = [f for f in finals if f.get("kind") == "FINAL"]
    assert len(deviations) == 2 and all(f["delivered_kw"] == 0.0 for f in deviations)
    assert sum(1 for f in finals if "settlement_id" in f) == 2
    assert proc.on_tick(0, 0, state) == []  # closed once
    wall["now"] = T0 + SLOT_MS + 3 * 86_400_000
    proc.on_tick(0, 0, state)
    assert not [k for k in state.data if k.startswith("v:")]  # forgotten after retention
    assert state.data["due"] == b"{}"


def test_rekey_peek_keeps_only_net_power_readings_with_a_prosumer():
    assert net_power_prosumer(reading("p01", T0, 1.0), SERDE) == "p01"
    site = power_reading("m", T0, 1.0, prosumer_id="p02", site_id="s-1")
    assert net_power_prosumer(SERDE.encode("Measurement", site), SERDE) == "p02"
    assert net_power_prosumer(SERDE.encode("Measurement", power_reading("m", T0, 1.0)), SERDE) is None
    volt = {**power_reading("m", T0, 230.0, prosumer_id="p01"), "quantity": "VOLTAGE_LN", "unit": "V"}
    assert net_power_prosumer(SERDE.encode("Measurement", volt), SERDE) is None
    phase = {**power_reading("m", T0, 1.0, prosumer_id="p01"), "phase": "L1"}
    assert net_power_prosumer(SERDE.encode("Measurement", phase), SERDE) is None
    with pytest.raises(DecodeError):
        net_power_prosumer(b"garbage", SERDE)
