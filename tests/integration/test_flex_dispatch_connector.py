"""Dispatch through the connectors, end to end on real parts: an order for a prosumer whose EV charger is bound to a
connector device -> the flex service's DeviceCommand on the embedded broker -> the connector -> the SpotLink EV API
simulator over HTTP (setPower) -> DeviceCommandResult EXECUTED.

The baseline comes from the prosumer's metered readings (OutlookBook, contract method METERED_BEFORE). The flex
service's clock lags the wall clock by 55 s, standing in for a request accepted a minute before its slot: the
slot then runs in real time now, so the connector (which checks validity against the real clock) executes it.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer

from connectors.app import Connector
from connectors.testing import consume
from edream.measurements import power_reading
from edream.serde import Serde
from streams.flex.desk import FlexDesk
from streams.flex.enrolment import ContractTerms, EvCharger, ProsumerRecord, Registry, enrolment_event
from streams.flex.model import Direction
from streams.flex.outlook import OutlookBook
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.service import FlexService, FlexTopics
from streams.flex.sim import SIM_DSO_ID, signed, sim_dso
from tools.sim.ev_api import EvApiServer

pytestmark = pytest.mark.integration
LAG_MS = 55_000
MINUTE = 60_000


def test_ev_set_point_from_an_order_is_executed_by_the_connector(
    tmp_path: Path, kafka_bootstrap, unique_topic, test_settings
):
    api = EvApiServer().start()
    topics = FlexTopics(**{f: unique_topic(f"fd-{f}") for f in FlexTopics.__dataclass_fields__})
    results_topic = unique_topic("fd-results")
    cid = f"it-fd-{uuid.uuid4().hex[:6]}"
    (tmp_path / "conn").mkdir()
    (tmp_path / "conn" / "c.yaml").write_text(f"""
connector:
  id: {cid}
  topic: {unique_topic("fd-meas")}
  commands: {topics.commands}
  command_results: {results_topic}
  deadletter: {topics.deadletter}
devices:
  - id: evse-7
    protocol: http
    base_url: {api.base_url}
    poll_interval_s: 5
    resources:
      - path: 'chargeboxes/{{"chargeboxID":"24"}}'
        fields: [{{path: maxPwrAC, quantity: CURRENT, unit: A}}]
    controls: {{api: spotlink, chargeboxes: {{"24": "37"}}}}
""")
    # 16 A x 230 V = 3.68 kW nominal; a 2 kW reduction leaves 1.68 kW -> 7 A
    charger = EvCharger("p-ev-charger", device_id="evse-7", target_id="24")
    rec = ProsumerRecord(
        "p-ev", "area-ev", ContractTerms("agg-1", baseline_method="METERED_BEFORE"), (charger,)
    )
    registry = Registry()
    svc = FlexService(
        FlexDesk(registry, OutlookBook(registry)),
        test_settings,
        kafka_bootstrap,
        topics,
        group_id=f"fd-{uuid.uuid4().hex[:8]}",
        state_file=tmp_path / "flex.pkl",
        clock=lambda: int(time.time() * 1000) - LAG_MS,
        consumer_overrides={"fetch.wait.max.ms": 10},
    )
    stop = threading.Event()
    worker = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    worker.start()
    serde = Serde(test_settings)
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})

    def send(topic: str, schema: str, key: str, record: dict) -> None:
        prod.produce(topic, serde.encode(schema, record, topic), key=key.encode())
        prod.flush(10)

    def reading(ts: int) -> None:
        send(topics.readings, "Measurement", "m-ev", power_reading("m-ev", ts, 5000.0, prosumer_id="p-ev"))

    async def scenario() -> list[dict]:
        async with Connector(tmp_path / "conn", test_settings, kafka_bootstrap):
            now = int(time.time() * 1000)
            send(topics.enrolments, "FlexEnrolment", "p-ev", enrolment_event(rec, now - 86_400_000))
            send(topics.dsos, "FlexDso", SIM_DSO_ID, sim_dso().to_avro())
            for k in range(10, 0, -1):  # 5 kW metered over the last minutes: the METERED baseline
                reading(now - LAG_MS - k * 20_000)
            async with asyncio.timeout(30):  # metered history in the book before the request arrives
                while svc.handled < 12:
                    await asyncio.sleep(0.05)
            desk_now = now - LAG_MS
            slot = -(-desk_now // MINUTE) * MINUTE  # the desk's next minute: running now in real time
            if slot + MINUTE - now < 20_000:  # leave the connector time inside the slot
                slot += MINUTE
            req = signed(
                FlexRequest(
                    request_id=f"req-{uuid.uuid4().hex[:6]}",
                    dso_id=SIM_DSO_ID,
                    area_id="area-ev",
                    direction=Direction.REDUCE,
                    slots=(RequestSlot(slot, 2.0),),
                    reward_micro_per_kwh=250_000,
                    deadline=slot,
                    created_at=desk_now,
                    slot_minutes=1,
                )
            )
            send(topics.requests, "FlexRequest", req.request_id, req.to_avro())
            await asyncio.sleep(max(0.0, (slot - now) / 1000) + 0.5)
            reading(max(slot + 1_000, int(time.time() * 1000)))  # a reading inside the running slot
            return await asyncio.to_thread(
                consume, kafka_bootstrap, results_topic, lambda rs: len(rs) >= 1, 60.0
            )

    try:
        results = asyncio.run(scenario())
    finally:
        stop.set()
        worker.join(30)
        api.stop()

    rejections = consume(kafka_bootstrap, topics.rejections, lambda rs: False, 2.0)
    assert rejections == []
    [offer] = consume(kafka_bootstrap, topics.offers, lambda rs: len(rs) >= 1, 10.0)
    assert offer["status"] == "FULL", offer
    orders = consume(kafka_bootstrap, topics.orders, lambda rs: len(rs) >= 1, 10.0)
    assert [(a["prosumer_id"], a["kw"], a["baseline_kw"]) for a in orders[0]["allocations"]] == [
        ("p-ev", 2.0, 5.0)
    ]
    [cmd] = consume(kafka_bootstrap, topics.commands, lambda rs: len(rs) >= 1, 10.0)
    assert (cmd["device_id"], cmd["target_id"], cmd["action"], cmd["value"]) == (
        "evse-7",
        "24",
        "SET_CURRENT_A",
        7.0,
    )
    [res] = results
    assert (res["command_id"], res["status"], res["detail"]) == (cmd["command_id"], "EXECUTED", "SET_OK")
    assert ("setPower", {"chargeboxID": "24", "powerValue": "7"}) in api.state.commands
    assert api.state.current_a["24"] == 7
