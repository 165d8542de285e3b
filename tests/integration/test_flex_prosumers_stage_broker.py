"""The per-prosumer flex stage on the real broker through the runtime (StageSupervisor): readings of 5 enrolled
prosumers among 200 meters that are not enrolled, a 2-slot order's allocations, a NaN reading. Proves: the stage's
deviations and settlements equal the processor's on MemoryState over the same records; the NaN reading is a dead
letter; after a stop with the local state deleted the second slot is still verified right (changelog recovery);
two workers in one group produce the same set as one."""

from __future__ import annotations

import math
import shutil
import threading
import time
from types import SimpleNamespace

import pytest
from confluent_kafka import Producer

from edream.measurements import power_reading
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from streams.agents.flex_prosumers import stage
from streams.flex.allocations import allocation_outs
from streams.flex.desk import FlexDesk
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import enrolment_event
from streams.flex.prosumer_stage import FlexProsumerProcessor, ProsumerParams
from tools.sim.flex_scenario import (
    SLOT_MS,
    T0,
    Devices,
    flat_outlook,
    pid,
    portfolio,
    reduce_request,
    sim_dsos,
    stoppers,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
COMPACT = {"retention.ms": "3600000", "cleanup.policy": "compact"}
CANONICAL = (
    "meter.readings.raw.v1",
    "flex.allocations.v1",
    "flex.enrolments.v1",
    "flex.deviations.v1",
    "settlement.flex.v1",
    "device.commands.v1",
    "flex.prosumer.status.v1",
    "platform.deadletter.v1",
)
WALL = T0 + 2 * SLOT_MS + 60_000  # readings are not ahead of it
# slots close on event time only: a tick (simulated wall clock) must not close one before its readings arrive
PARAMS = ProsumerParams(close_after_ms=10 * SLOT_MS)
STEP = 15_000


def scenario():
    """(enrolment, allocation, reading part 1, reading part 2) records as (canonical topic, key, value)."""
    serde = Serde()
    desk = FlexDesk(portfolio(5), flat_outlook, dsos=sim_dsos(), redispatch=False)
    [offer] = desk.submit(reduce_request(kw=6.0, n_slots=2), now=T0 - 3_600_000)
    [order] = desk.accept(offer.record["offer_id"], now=T0 - 1_800_000)
    order = desk.orders[order.record["order_id"]]
    enrol = [
        (
            "flex.enrolments.v1",
            r.prosumer_id,
            serde.encode("FlexEnrolment", enrolment_event(r, T0 - 86_400_000)),
        )
        for r in portfolio(5).records.values()
    ]
    allocs = [
        ("flex.allocations.v1", o.key, serde.encode(o.schema, o.record)) for o in allocation_outs(order)
    ]
    readings = []
    devices = Devices([pid(i) for i in range(5)], stoppers({"p00"}, T0 + 60_000))
    for seq, (p, ts, kw) in enumerate(devices.readings(lambda: order, T0, T0 + 2 * SLOT_MS + STEP, STEP)):
        readings.append((f"meter-{p}", power_reading(f"meter-{p}", ts, kw * 1000, prosumer_id=p, seq=seq)))
        if p == "p04":  # 200 meters not enrolled, 40 per step, and some without a prosumer
            for j in range(40):
                m = f"other-{(seq + j) % 200}"
                readings.append(
                    (m, power_reading(m, ts, 800.0, prosumer_id=None if j % 4 else f"x{j}", seq=seq))
                )
    encoded = [("meter.readings.raw.v1", k, serde.encode("Measurement", r)) for k, r in readings]
    half = len(encoded) * 3 // 4  # stop in the second slot
    nan = power_reading("meter-p01", T0 + 1_000, math.nan, prosumer_id="p01")
    part1 = encoded[:half] + [("meter.readings.raw.v1", "meter-p01", serde.encode("Measurement", nan))]
    return enrol, allocs, part1, encoded[half:]


def expected(enrol, allocs, readings) -> set[tuple[str, bytes]]:
    serde = Serde()
    view = SimpleNamespace(items=lambda: [(k.encode(), v) for _, k, v in enrol], version=1)
    proc = FlexProsumerProcessor(serde, EnrolledRegistry(view, serde), {}, clock=lambda: WALL, params=PARAMS)
    state, out = MemoryState(), set()
    for topic, key, value in allocs + readings:
        try:
            emits = proc.on_record(Record(topic, 0, 0, key.encode(), value, T0), state)
        except Exception:  # noqa: BLE001 - the NaN reading: the runtime dead-letters it
            continue
        out |= {(e.topic, e.value) for e in emits if e.topic in ("flex.deviations.v1", "settlement.flex.v1")}
    return out


def setup(unique_topic, kafka_bootstrap):
    names = {c: unique_topic(c, 4, COMPACT if c == "flex.enrolments.v1" else CONFIG) for c in CANONICAL}
    topology = SimpleNamespace(topics=[SimpleNamespace(name=n) for n in names.values()])
    names["group"] = f"fp-{time.time_ns()}"
    return names, topology


def produce(kafka_bootstrap, names, records) -> None:
    p = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    for topic, key, value in records:
        p.produce(names[topic], key=key.encode(), value=value)
    p.flush(30)


def start(settings, spec, names, data_dir):
    sup = StageSupervisor(
        spec,
        settings.model_copy(update={"edream_data_dir": data_dir, "edream_app_id": names["group"]}),
        names["platform.deadletter.v1"],
        None,
        4,
        handle_signals=False,
    )
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def stop(sup, t) -> None:
    sup.stop()
    t.join(60)
    assert not t.is_alive()


def collect(read_topic, names, n: int) -> set[tuple[str, bytes]]:
    out = set()
    for c in ("flex.deviations.v1", "settlement.flex.v1"):
        want = sum(1 for t, _ in n if t == c)
        out |= {(c, m.value()) for m in read_topic(names[c], want, timeout=120)}
    return out


@pytest.mark.timeout(600)  # 167-170 s under make test's load, once over 300 s (ci54); its waits allow 540 s
def test_flex_prosumers_on_broker_recovery_from_changelog(
    test_settings, unique_topic, read_topic, kafka_bootstrap
):
    enrol, allocs, part1, part2 = scenario()
    want = expected(enrol, allocs, part1 + part2)
    assert {t for t, _ in want} == {"flex.deviations.v1", "settlement.flex.v1"}
    names, topology = setup(unique_topic, kafka_bootstrap)
    produce(kafka_bootstrap, names, enrol)
    spec = stage(test_settings, topology, clock=lambda: WALL, params=PARAMS)
    data_dir = test_settings.edream_data_dir / f"fp-{time.time_ns()}"
    produce(kafka_bootstrap, names, allocs + part1)
    sup, t = start(test_settings, spec, names, data_dir)
    [letter] = read_topic(names["platform.deadletter.v1"], 1, timeout=120)
    rec = Serde().decode(letter.value())[1]
    assert rec["stage"] == "stage:flex-prosumers" and "value" in rec["error"]
    deadline = time.monotonic() + 120
    while sup.health.events_in < len(allocs) + len(part1) // 5 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # let the last checkpoint commit
    stop(sup, t)
    shutil.rmtree(sup.state_dir)  # local state lost: the second slot's tracks come back from the changelog
    produce(kafka_bootstrap, names, part2)
    sup, t = start(
        test_settings, stage(test_settings, topology, clock=lambda: WALL, params=PARAMS), names, data_dir
    )
    try:
        got = collect(read_topic, names, want)
    finally:
        stop(sup, t)
    assert got == want
    # the 200 meters that are not enrolled never reached the processor: only enrolled readings and allocations
    assert sup.health.events_in <= len(allocs) + sum(1 for _, k, _ in part2 if k.startswith("meter-p"))


def test_two_workers_give_the_same_outputs_as_one(test_settings, unique_topic, read_topic, kafka_bootstrap):
    enrol, allocs, part1, part2 = scenario()
    want = expected(enrol, allocs, part1 + part2)
    names, topology = setup(unique_topic, kafka_bootstrap)
    produce(kafka_bootstrap, names, enrol)
    base = test_settings.edream_data_dir / f"fp2-{time.time_ns()}"
    workers = [
        start(
            test_settings, stage(test_settings, topology, clock=lambda: WALL, params=PARAMS), names, base / w
        )
        for w in "ab"
    ]
    try:
        time.sleep(5)
        produce(kafka_bootstrap, names, allocs + part1 + part2)
        got = collect(read_topic, names, want)
    finally:
        for w in workers:
            stop(*w)
    assert got == want
    assert all(w[0].health.events_in > 0 for w in workers), "both workers must get partitions"
