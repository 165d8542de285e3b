"""OpenADR 2.0b between two independent implementations over HTTP: openleadr's VEN client (a prosumer site)
against the platform's VTN (connectors/openadr), on the real broker.

A FlexOrder on Kafka for the site's prosumer (and one without a VEN) becomes a DR event the VEN receives on its
next poll: one LOAD_DISPATCH delta signal with the ordered kW per 15-minute slot, the gap between the two ordered
slots a 0 kW interval; the VEN opts in and the DrEventResponse OPT_IN is on Kafka. The VEN's power report becomes
a validated Measurement on the readings topic, in W; an implausible value a dead letter. A VEN whose name is not
configured is refused at registration, with a Rejection event. The VPP's dispatch (a VppCapability answer) of a
generator the site hosts becomes a LOAD_DISPATCH setpoint event (generation as negative load per slot), opted in;
a reserve-only battery and an asset at no site get none."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from flex_stages import Follower, wait_until
from openadr_support import (
    TOPICS,
    LoopThread,
    flex_order,
    next_day_slot,
    now_ms,
    publish_order,
    vpp_capability,
)
from openleadr import OpenADRClient

from connectors.openadr.config import parse_config
from connectors.openadr.vtn import OpenAdrVtn
from edream.embedded.process import free_port
from edream.serde import Serde

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(120)
def test_ven_gets_order_as_event_opts_in_and_reports_power(kafka_bootstrap, unique_topic, test_settings):
    names = {c: unique_topic(c, 2) for c in (*TOPICS, "vpp.capability.v1")}
    serde = Serde(test_settings)
    port = free_port()
    config = parse_config(
        {
            "vtn": {"vtn_id": "EDREAM-VTN", "port": port, "poll_seconds": 0.5, "report_seconds": 1},
            "vens": [
                {
                    "ven_id": "ven-site",
                    "ven_name": "site-1",
                    "prosumer_id": "p-site",
                    "devices": {"main": "meter-site"},
                    "vpp_assets": ["chp-site"],
                }
            ],
        }
    )
    follow = {c: Follower(kafka_bootstrap, names[c], serde) for c in TOPICS[1:]}
    vtn = OpenAdrVtn(config, {"bootstrap.servers": kafka_bootstrap}, serde, names, now_ms)
    received: list[dict] = []
    power_w = [1250.0]

    async def on_event(event):
        received.append(event)
        return "optIn"

    ven = OpenADRClient(ven_name="site-1", vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b")
    ven.add_handler("on_event", on_event)
    ven.add_report(
        callback=lambda: power_w[0],
        resource_id="main",
        measurement="REAL_POWER",
        unit="W",
        sampling_rate=timedelta(seconds=1),
        report_duration=timedelta(seconds=1),
    )
    stranger = OpenADRClient(ven_name="mallory", vtn_url=f"http://127.0.0.1:{port}/OpenADR2/Simple/2.0b")
    loop = LoopThread()
    slot0 = next_day_slot()
    try:
        loop.run(vtn.start())
        loop.run(ven.run())
        loop.run(stranger.run())
        order = flex_order(
            "order-1", [("p-site", slot0, 3.0), ("p-site", slot0 + 2 * 900_000, 2.5), ("p-other", slot0, 4.0)]
        )
        publish_order(kafka_bootstrap, serde, names["flex.orders.v1"], order)
        # the VPP's dispatch: the site's CHP generates 40 then 55 kW; a battery there (reserve only) and an asset
        # at no site get no event
        answer = vpp_capability(
            "cap-1", slot0 + 4 * 900_000, {"chp-site": [40.0, 55.0], "bess-x": [], "chp-far": [9.0, 9.0]}
        )
        prod = Producer({"bootstrap.servers": kafka_bootstrap})
        topic = names["vpp.capability.v1"]
        prod.produce(topic, serde.encode("VppCapability", answer, topic), key=b"vpp-test")
        assert prod.flush(10) == 0

        wait_until(lambda: len(received) >= 2, 20, "the DR events at the VEN")
        opted = {r["order_id"]: r for r in follow["flex.dr.responses.v1"].wait(2, 20)}
        readings = follow["meter.readings.raw.v1"]
        wait_until(lambda: readings.poll() >= 1, 20, "a reading")
        power_w[0] = 1e12  # implausible: a dead letter, not a reading
        wait_until(lambda: follow["platform.deadletter.v1"].poll() >= 1, 20, "a dead letter")
        wait_until(lambda: follow["platform.rejections.v1"].poll() >= 1, 20, "a rejection")
    finally:
        for client in (ven, stranger):
            loop.run(client.stop())
        loop.run(vtn.stop())
        for f in follow.values():
            f.close()

    assert len(received) == 2, received
    by_id = {e["event_descriptor"]["event_id"]: e for e in received}
    event = by_id["order-1~r1~p-site"]
    [signal] = event["event_signals"]
    assert (signal["signal_name"], signal["signal_type"]) == ("LOAD_DISPATCH", "delta")
    start = datetime.fromtimestamp(slot0 / 1000, UTC)
    assert event["active_period"]["dtstart"] == start
    assert event["active_period"]["duration"] == timedelta(minutes=45)
    assert [(i["duration"], i["signal_payload"]) for i in signal["intervals"]] == [
        (timedelta(minutes=15), -3.0),
        (timedelta(minutes=15), 0.0),
        (timedelta(minutes=15), -2.5),
    ]
    assert (opted["order-1"]["revision"], opted["order-1"]["prosumer_id"], opted["order-1"]["party_id"]) == (
        1,
        "p-site",
        "ven-site",
    )
    assert opted["order-1"]["opt"] == opted["vpp:cap-1:chp-site"]["opt"] == "OPT_IN"
    [vpp_signal] = by_id["vpp~cap-1~v1~chp-site"]["event_signals"]
    assert (vpp_signal["signal_name"], vpp_signal["signal_type"]) == ("LOAD_DISPATCH", "setpoint")
    assert [(i["duration"], i["signal_payload"]) for i in vpp_signal["intervals"]] == [
        (timedelta(minutes=15), -40.0),
        (timedelta(minutes=15), -55.0),
    ]
    reading = readings.records[0]
    assert (reading["device_id"], reading["prosumer_id"], reading["quantity"], reading["unit"]) == (
        "meter-site",
        "p-site",
        "P_ACTIVE",
        "W",
    )
    assert reading["value"] == 1250.0 and abs(reading["ts"] - now_ms()) < 60_000
    assert all(r["value"] == 1250.0 for r in readings.records)
    letter = follow["platform.deadletter.v1"].records[0]
    assert (letter["stage"], letter["error_type"]) == ("openadr-vtn", "value_out_of_range")
    [rejected] = follow["platform.rejections.v1"].records
    assert (rejected["subject_kind"], rejected["code"], rejected["subject_id"]) == (
        "OpenAdrRegistration",
        "UNKNOWN_VEN",
        "mallory",
    )
