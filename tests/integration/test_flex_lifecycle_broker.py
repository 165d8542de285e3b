"""Acceptance on real components: embedded Tansu broker + chDB, 50 prosumers enrolled through the registry topic, the
DSO registered on the DSO registry topic, requests from "dso-mallory" (unsigned, self-signed) rejected, a signed
4 x 15-min reduction offered, 5 prosumers stop complying; deviations detected in the slot, shortfall re-dispatched, settlements hand-computed.

The simulated devices run in lock-step with the service (they read amended orders from the orders topic
before each 15-s reading step), so the run is deterministic.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from eth_utils import keccak

from edream.avro_schemas import contract
from edream.measurements import power_reading
from edream.serde import Serde
from edream.sink_writer import Positioned, SinkWriter
from streams.flex.desk import FlexDesk
from streams.flex.enrolment import Registry, enrolment_event
from streams.flex.orders import FlexOrder
from streams.flex.requests import RequestSlot, to_ms
from streams.flex.service import FlexService, FlexTopics
from streams.flex.signing import sign_request
from streams.flex.sim import (
    SIM_DSO_ID,
    SLOT_MS,
    T0,
    Devices,
    flat_outlook,
    pid,
    portfolio,
    reduce_request,
    signed,
    sim_dso,
    stoppers,
)
from streams.flex.sinks import sink

pytestmark = pytest.mark.integration

STEP_MS = 15_000
STOP_AT = T0 + 180_000
DEVIATORS = {pid(i) for i in range(5)}
END = T0 + 4 * SLOT_MS


def wait_for(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


class TopicReader:
    """Reads one single-partition topic from the beginning, decoding with Serde."""

    def __init__(self, bootstrap: str, topic: str, serde: Serde):
        self.c = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"t-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.topic, self.serde, self.records = topic, serde, []
        self.raw: list[Positioned] = []

    def drain_until(self, n: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.records) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.topic}: {len(self.records)} of {n} records")
            msg = self.c.poll(0.05)
            if msg is None or msg.error():
                continue
            _, rec = self.serde.decode(msg.value(), self.topic)
            self.records.append(rec)
            self.raw.append(Positioned(rec, msg.topic(), msg.partition(), msg.offset()))
        return self.records

    def close(self) -> list[dict]:
        self.c.close()
        return self.records


def read_all(bootstrap: str, topic: str, serde: Serde, n: int) -> TopicReader:
    r = TopicReader(bootstrap, topic, serde)
    r.drain_until(n)
    r.close()
    return r


def test_flex_lifecycle_on_broker_and_chdb(
    kafka_bootstrap, unique_topic, test_settings, chdb_client, unique_table, tmp_path
):
    topics = FlexTopics(**{f.name: unique_topic(f"flex-{f.name}") for f in dataclasses.fields(FlexTopics)})
    serde = Serde(test_settings)
    desk = FlexDesk(Registry(), flat_outlook)  # filled from the enrolments topic
    # the service's wall clock: an hour before delivery while the request is offered, then it follows the
    # readings as they are sent (a reading ahead of the wall clock is dead-lettered, as in production)
    wall = {"now": T0 - 3_600_000}
    svc = FlexService(
        desk,
        test_settings,
        kafka_bootstrap,
        topics,
        group_id=f"flex-{uuid.uuid4().hex[:8]}",
        state_file=tmp_path / "flex.pkl",
        clock=lambda: wall["now"],
        consumer_overrides={"fetch.wait.max.ms": 10},
    )
    stop = threading.Event()
    worker = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    worker.start()
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})
    sent = 0
    orders = TopicReader(kafka_bootstrap, topics.orders, serde)

    def send(topic: str, schema: str, key: str, rec: dict) -> None:
        nonlocal sent
        prod.produce(topic, serde.encode(schema, rec, topic), key=key.encode())
        sent += 1

    try:
        for rec in portfolio(50).records.values():
            send(topics.enrolments, "FlexEnrolment", rec.prosumer_id, enrolment_event(rec, T0 - 86_400_000))
        prod.flush()
        wait_for(lambda: svc.handled >= sent, what="enrolments")
        assert len(desk.registry.records) == 50
        send(topics.dsos, "FlexDso", SIM_DSO_ID, sim_dso().to_avro())
        prod.produce(topics.requests, b"not avro at all", key=b"garbage")  # -> dead letter, nothing else
        sent += 1
        bad = signed(
            dataclasses.replace(reduce_request(request_id="req-bad"), slots=(RequestSlot(T0, -5.0),))
        )
        send(topics.requests, "FlexRequest", "req-bad", bad.to_avro())
        # "dso-mallory" is not registered: unsigned, and signed with its own key -> rejected, nothing dispatched
        mallory = dataclasses.replace(
            reduce_request(request_id="req-mallory"), dso_id="dso-mallory", signature=None
        )
        send(topics.requests, "FlexRequest", "req-mallory", mallory.to_avro())
        forged = sign_request(
            dataclasses.replace(mallory, request_id="req-mallory-signed"), "0x" + keccak(text="mallory").hex()
        )
        send(topics.requests, "FlexRequest", "req-mallory-signed", forged.to_avro())
        send(topics.requests, "FlexRequest", "req-1", reduce_request().to_avro())
        prod.flush()
        [first] = orders.drain_until(1)
        order_id = first["order_id"]
        assert first["revision"] == 1 and len(first["allocations"]) == 80  # 20 prosumers x 4 slots

        def latest_order() -> FlexOrder:
            """Lock-step: the service has handled everything sent, and we hold every order it emitted."""
            prod.flush()
            wait_for(lambda: svc.handled >= sent, what="service to catch up")
            orders.drain_until(svc.emitted.get("FlexOrder", 0))
            return FlexOrder.from_avro(max(orders.records, key=lambda r: r["revision"]))

        devices = Devices([pid(i) for i in range(50)], stoppers(DEVIATORS, STOP_AT))
        for seq, (p, ts, kw) in enumerate(devices.readings(latest_order, T0, END, STEP_MS)):
            wall["now"] = max(wall["now"], ts)
            send(
                topics.readings,
                "Measurement",
                f"meter-{p}",
                power_reading(f"meter-{p}", ts, kw * 1000.0, prosumer_id=p, seq=seq),
            )
        wall["now"] = END + 60_000
        send(
            topics.readings,
            "Measurement",
            "meter-p49",
            power_reading("meter-p49", END + 60_000, 5000.0, prosumer_id="p49", seq=10**9),
        )  # heartbeat
        final_order = latest_order()
        wait_for(lambda: svc.emitted.get("Settlement", 0) >= len(final_order.allocations), what="settlements")
    finally:
        stop.set()
        worker.join(30)
        orders.close()

    assert final_order.order_id == order_id and final_order.revision == 1 + len(DEVIATORS)
    rejections = read_all(kafka_bootstrap, topics.rejections, serde, 3).records
    assert sorted((r["code"], r["subject_id"], r["party_id"]) for r in rejections) == [
        ("NEGATIVE_KW", "req-bad", SIM_DSO_ID),
        ("UNKNOWN_DSO", "req-mallory-signed", "dso-mallory"),
        ("UNSIGNED_REQUEST", "req-mallory", "dso-mallory"),
    ]
    [offer] = read_all(kafka_bootstrap, topics.offers, serde, 1).records  # only the signed request's
    assert offer["request_id"] == "req-1"
    assert {o["request_id"] for o in orders.records} == {"req-1"}
    assert offer["status"] == "FULL" and [s["shortfall_kw"] for s in offer["slots"]] == [0.0] * 4

    devs = read_all(kafka_bootstrap, topics.deviations, serde, svc.emitted["Deviation"])
    projected = [d for d in devs.records if d["kind"] == "PROJECTED"]
    assert {d["prosumer_id"] for d in projected} == DEVIATORS
    for d in projected:  # evident at the first reading after STOP_AT, detected within 2 readings
        assert d["verdict"] == "SHORTFALL"
        assert STOP_AT + STEP_MS <= to_ms(d["ts"]) <= STOP_AT + 2 * STEP_MS
    for k in range(1, 4):
        t = T0 + k * SLOT_MS
        assert {a.prosumer_id for a in final_order.allocations if a.slot_start == t} == {
            pid(i) for i in range(5, 25)
        }

    stl = read_all(kafka_bootstrap, topics.settlements, serde, len(final_order.allocations))
    by = {(s["party_id"], to_ms(s["window_start"])): s for s in stl.records}
    # 750 Wh less half a 15-s step of 3 kW (6.25 Wh): the meter reads the baseline at T0 and the reduced power at
    # T0 + 15 s, and readings are instantaneous, so the step counts as a ramp (tests/unit/flex/test_flex_lifecycle_sim)
    assert (by[("p10", T0)]["quantity_wh"], by[("p10", T0)]["amount_micro"]) == (744, 122_760)
    # p00: the half steps at start and stop cancel: 3 kW for 180 s = 150 Wh, 600 Wh short
    assert (by[("p00", T0)]["quantity_wh"], by[("p00", T0)]["amount_micro"]) == (150, -270_000)
    assert by[("p20", T0 + SLOT_MS)]["amount_micro"] == 135_000
    finals = [d for d in devs.records if d["kind"] == "FINAL"]
    assert {d["prosumer_id"] for d in finals if d["verdict"] != "WITHIN"} == DEVIATORS

    [dl] = read_all(kafka_bootstrap, topics.deadletter, serde, 1).records
    assert (dl["source_topic"], dl["original"], dl["error_type"]) == (
        topics.requests,
        b"not avro at all",
        "DecodeError",
    )

    def restart(state_file) -> FlexService:
        again = FlexService(
            FlexDesk(Registry(), flat_outlook),
            test_settings,
            kafka_bootstrap,
            topics,
            group_id=svc.group_id,
            state_file=state_file,
            clock=lambda: T0 - 3_600_000,
            consumer_overrides={"fetch.wait.max.ms": 10},
        )
        stop2 = threading.Event()
        worker2 = threading.Thread(target=again.run, args=(stop2,), daemon=True)
        worker2.start()
        try:
            # a consumer-group rejoin of the same group can take a rebalance round on a busy machine; wait for
            # the assignment too: a member closed while still joining holds up the group's next rebalance
            wait_for(
                lambda: (
                    len(again.desk.registry.records) == 50
                    and len(again.desk.dsos) == 1
                    and again.loop.consumer.assignment()
                ),
                timeout=120,
                what="registry and assignment after restart",
            )
        finally:
            stop2.set()
            worker2.join(30)
        return again

    # restart with the same group and state file: orders, verification and settlements are restored
    restored = restart(tmp_path / "flex.pkl").desk
    assert restored.orders[order_id] == final_order.__class__(
        **{**final_order.__dict__, "status": "COMPLETED"}
    )
    assert len(restored.settlements) == len(final_order.allocations)
    # state file lost, committed offsets kept: the compacted registry is still re-read from the beginning
    assert restart(tmp_path / "lost.pkl").desk.orders == {}

    # ClickHouse: idempotent sink (written twice), then the example per-prosumer settlement query
    table = unique_table("settlement_flex")
    writer = SinkWriter(
        chdb_client, sink("settlement_flex").model_copy(update={"table": table}), contract("Settlement")
    )
    writer.write(stl.raw)
    writer.write(stl.raw)
    rows = chdb_client.query(
        f"SELECT party_id, sum(amount_micro), count() FROM {table} FINAL GROUP BY party_id ORDER BY party_id"
    ).result_rows
    per_party = {r[0]: (r[1], r[2]) for r in rows}
    assert per_party["p00"] == (-270_000, 1)
    assert per_party["p10"] == (122_760 + 3 * 123_750, 4)  # the half step only where it switched on, slot 0
    assert sum(r[2] for r in rows) == len(final_order.allocations)
