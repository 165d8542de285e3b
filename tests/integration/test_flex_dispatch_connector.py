"""Dispatch through the connectors, end to end on real parts: an order of the area desk (stage ``flex``) for a
prosumer whose EV charger is bound to a connector device -> its allocation -> the per-prosumer stage
(``flex-prosumers``)'s DeviceCommand on the embedded broker -> the connector -> the SpotLink EV API simulator over
HTTP (setPower) -> DeviceCommandResult EXECUTED. Both stages run by StageSupervisor threads.

The baseline comes from the prosumer's metered readings (the per-prosumer stage's status, contract method
METERED_BEFORE). The stages' clock lags the wall clock by 55 s, standing in for a request accepted a minute before
its slot: the slot then runs in real time now, so the connector (which checks validity against the real clock)
executes it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from flex_stages import Follower, Stages, flex_topics

from connectors.app import Connector
from connectors.testing import consume
from edream.measurements import power_reading
from edream.serde import Serde
from streams.flex.enrolment import ContractTerms, EvCharger, ProsumerRecord, enrolment_event
from streams.flex.model import Direction
from streams.flex.requests import FlexRequest, RequestSlot
from tools.sim.ev_api import EvApiServer
from tools.sim.flex_scenario import SIM_DSO_ID, signed, sim_dso

pytestmark = [pytest.mark.integration, pytest.mark.slow]
LAG_MS = 55_000
MINUTE = 60_000


def test_ev_set_point_from_an_order_is_executed_by_the_connector(
    tmp_path: Path, kafka_bootstrap, unique_topic, test_settings
):
    api = EvApiServer().start()
    names, topology = flex_topics(unique_topic, kafka_bootstrap)
    results_topic = unique_topic("fd-results")
    cid = f"it-fd-{uuid.uuid4().hex[:6]}"
    (tmp_path / "conn").mkdir()
    (tmp_path / "conn" / "c.yaml").write_text(f"""
connector:
  id: {cid}
  topic: {unique_topic("fd-meas")}
  commands: {names["device.commands.v1"]}
  command_results: {results_topic}
  deadletter: {names["platform.deadletter.v1"]}
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
    serde = Serde(test_settings)
    prod = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 0})

    def send(canonical: str, schema: str, key: str, record: dict) -> None:
        prod.produce(names[canonical], serde.encode(schema, record, names[canonical]), key=key.encode())
        prod.flush(10)

    # the registries are on their topics before the stages read them whole
    send(
        "flex.enrolments.v1",
        "FlexEnrolment",
        "p-ev",
        enrolment_event(rec, int(time.time() * 1000) - 86_400_000),
    )
    send("flex.dsos.v1", "FlexDso", SIM_DSO_ID, sim_dso().to_avro())
    lagging = {"clock": lambda: int(time.time() * 1000) - LAG_MS}
    group = f"fd-{uuid.uuid4().hex[:8]}"
    stages = Stages(
        test_settings, topology, names, group, test_settings.edream_data_dir / group, 1, lagging, lagging
    )
    statuses = Follower(kafka_bootstrap, names["flex.prosumer.status.v1"], serde)

    def reading(ts: int) -> None:
        send(
            "meter.readings.raw.v1",
            "Measurement",
            "m-ev",
            power_reading("m-ev", ts, 5000.0, prosumer_id="p-ev"),
        )

    async def scenario() -> list[dict]:
        async with Connector(tmp_path / "conn", test_settings, kafka_bootstrap):
            now = int(time.time() * 1000)
            for k in range(10, 0, -1):  # 5 kW metered over the last minutes: the METERED baseline
                reading(now - LAG_MS - k * 20_000)
            async with asyncio.timeout(120):  # the prosumer's metered status reached the area desk
                while stages.events_in("flex") < 2 or statuses.poll() < 1:
                    await asyncio.sleep(0.1)
            now = int(time.time() * 1000)
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
            send("flex.requests.v1", "FlexRequest", req.request_id, req.to_avro())
            await asyncio.sleep(max(0.0, (slot - now) / 1000) + 0.5)
            reading(max(slot + 1_000, int(time.time() * 1000)))  # a reading inside the running slot
            return await asyncio.to_thread(
                consume, kafka_bootstrap, results_topic, lambda rs: len(rs) >= 1, 60.0
            )

    try:
        results = asyncio.run(scenario())
    finally:
        stages.stop()
        statuses.close()
        api.stop()

    rejections = consume(kafka_bootstrap, names["platform.rejections.v1"], lambda rs: False, 2.0)
    assert rejections == []
    [offer] = consume(kafka_bootstrap, names["flex.offers.v1"], lambda rs: len(rs) >= 1, 10.0)
    assert offer["status"] == "FULL", offer
    orders = consume(kafka_bootstrap, names["flex.orders.v1"], lambda rs: len(rs) >= 1, 10.0)
    assert [(a["prosumer_id"], a["kw"], a["baseline_kw"]) for a in orders[0]["allocations"]] == [
        ("p-ev", 2.0, 5.0)
    ]
    [cmd] = consume(kafka_bootstrap, names["device.commands.v1"], lambda rs: len(rs) >= 1, 10.0)
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
