"""MQTT: amqtt broker -> connector -> real Kafka broker. The spec's SMX example payload (T77) arrives with every
mapped quantity, SI suffixes and units resolved; JSON path mapping; garbage payloads; MQTT broker restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.app import Connector
from connectors.testing import consume
from edream.settings import Settings
from tools.sim.mqtt_broker import MqttBroker
from tools.sim.smx_publisher import EXAMPLE, SmxPublisherFleet

pytestmark = pytest.mark.integration

# (quantity, phase) -> (value in contract unit, unit, OBIS) for the T77 example
SPEC_EXPECTED = {
    ("P_ACTIVE", "TOTAL"): (988.267, "W", "1-1:16.7.0"),
    ("P_ACTIVE", "L1"): (382.259, "W", "1-1:36.7.0"),
    ("P_ACTIVE", "L2"): (129.896, "W", "1-1:56.7.0"),
    ("P_ACTIVE", "L3"): (476.111, "W", "1-1:76.7.0"),
    ("Q_REACTIVE", "TOTAL"): (4126.0, "var", "1-1:3.7.0"),
    ("Q_REACTIVE", "L1"): (1572.0, "var", "1-1:23.7.0"),
    ("Q_REACTIVE", "L2"): (1317.0, "var", "1-1:43.7.0"),
    ("Q_REACTIVE", "L3"): (1237.0, "var", "1-1:63.7.0"),
    ("S_APPARENT", "TOTAL"): (4280.0, "VA", None),
    ("S_APPARENT", "L1"): (1621.0, "VA", None),
    ("S_APPARENT", "L2"): (1326.0, "VA", None),
    ("S_APPARENT", "L3"): (1334.0, "VA", None),
    ("VOLTAGE_LN", "L1"): (238.638, "V", "1-1:32.7.0"),
    ("VOLTAGE_LN", "L2"): (237.746, "V", "1-1:52.7.0"),
    ("VOLTAGE_LN", "L3"): (237.492, "V", "1-1:72.7.0"),
    ("VOLTAGE_LN", "N"): (0.0, "V", None),
    ("VOLTAGE_LL", "L12"): (412.710, "V", None),
    ("VOLTAGE_LL", "L23"): (411.242, "V", None),
    ("VOLTAGE_LL", "L31"): (412.432, "V", None),
    ("CURRENT", "L1"): (6.799, "A", "1-1:31.7.0"),
    ("CURRENT", "L2"): (5.583, "A", "1-1:51.7.0"),
    ("CURRENT", "L3"): (5.620, "A", "1-1:71.7.0"),
    ("CURRENT", "N"): (0.0, "A", None),
    ("FREQUENCY", "TOTAL"): (50.049, "Hz", "1-1:14.7.0"),
    ("POWER_FACTOR", "TOTAL"): (0.231, "1", None),
    ("E_APPARENT", "TOTAL"): (43_132_045.9, "VAh", None),
    ("E_IMPORT", "TOTAL"): (7_302_436.2, "Wh", "1-1:1.8.0"),
    ("E_EXPORT", "TOTAL"): (2_573_463.6, "Wh", "1-1:2.8.0"),
}
SPEC_TS = 1559943878000  # .SERVER_TIME 2019-06-07 21:44:38 UTC


def _config(tmp: Path, port: int, topic: str) -> Path:
    (tmp / "c.yaml").write_text(f"""
connector: {{id: it-mqtt, topic: {topic}, linger_ms: 5}}
devices:
  - {{id: smx-fleet, protocol: mqtt, broker_port: {port}, topic: "+/SMX/", device_id_level: 0, format: smx,
     site_id: terni}}
  - id: evse-fleet
    protocol: mqtt
    broker_port: {port}
    topic: site1/evse/+/status
    device_id_level: 2
    timestamp: {{path: ts}}
    fields:
      - {{path: data.power, quantity: EV_CHARGE_POWER, unit: kW}}
      - {{path: data.soc, quantity: SOC, unit: "%", min: 0, max: 100}}
""")
    return tmp


async def _until(cond: Callable[[], bool], what: str = "condition") -> None:
    """Wait for ``cond`` (bounded, so a broken connector fails the test instead of hanging it)."""
    async with asyncio.timeout(30):
        while not cond():
            await asyncio.sleep(0.05)


def test_smx_spec_payload_json_paths_garbage_and_broker_restart(
    tmp_path: Path, kafka_bootstrap: str, unique_topic: Callable[..., str], test_settings: Settings
) -> None:
    topic = unique_topic("conn.mqtt")
    broker = MqttBroker().start()

    async def scenario() -> tuple[Connector, list[dict]]:
        nonlocal broker
        conn = Connector(_config(tmp_path, broker.port, topic), test_settings, kafka_bootstrap)
        rt = conn.runtime
        async with conn:
            await _until(
                lambda: rt.statuses.get("smx-fleet") is not None and rt.statuses["smx-fleet"].state == "up"
            )
            pub = SmxPublisherFleet(broker.host, broker.port, 2)
            pub.publish_raw("BBB6038/SMX/", EXAMPLE.read_bytes()).wait_for_publish(5)
            pub.publish_raw("BBB9999/SMX/", b"{not json").wait_for_publish(5)
            pub.publish_raw(
                "site1/evse/24/status",
                json.dumps({"ts": 1700000000000, "data": {"power": "7.4", "soc": 130}}),
            )
            await _until(lambda: rt.seq("BBB6038") >= len(SPEC_EXPECTED) and rt.seq("24") >= 2)
            await _until(lambda: rt.statuses["smx-fleet"].last_error is not None)
            pub.stop()
            # restart the MQTT broker: the connector reconnects and re-subscribes by itself
            port = broker.port
            broker.stop()
            await _until(lambda: rt.statuses["smx-fleet"].state == "down")
            broker = MqttBroker(port=port).start()
            await _until(lambda: rt.statuses["smx-fleet"].state == "up")
            await asyncio.sleep(0.5)  # let the SUBSCRIBE complete after CONNACK
            pub = SmxPublisherFleet(broker.host, broker.port, 2)
            pub.publish_round()
            await _until(lambda: rt.seq("BBB6039") >= 28)
            pub.stop()
        total = sum(rt.seq(d) for d in ("BBB6038", "BBB6039", "24"))
        got = await asyncio.to_thread(consume, kafka_bootstrap, topic, lambda rs: len(rs) >= total)
        return conn, got

    try:
        conn, records = asyncio.run(scenario())
    finally:
        broker.stop()
    assert conn.producer.buffered == 0
    spec = [r for r in records if r["device_id"] == "BBB6038" and r["ts"] == SPEC_TS]
    got = {(r["quantity"], r["phase"]): r for r in spec}
    assert len(got) == len(spec) == len(SPEC_EXPECTED)
    for key, (value, unit, obis) in SPEC_EXPECTED.items():
        r = got[key]
        assert r["value"] == pytest.approx(value, rel=1e-9), key
        assert (r["unit"], r["quality"], r["ts_source"], r["source_protocol"]) == (
            unit,
            "GOOD",
            "DEVICE",
            "MQTT",
        )
        if obis:
            assert r["obis_code"] == obis, key
        assert r["site_id"] == "terni" and r["_key"] == "BBB6038"
    ev = {r["quantity"]: r for r in records if r["device_id"] == "24"}
    assert ev["EV_CHARGE_POWER"]["value"] == pytest.approx(7400.0) and ev["EV_CHARGE_POWER"]["unit"] == "W"
    assert ev["EV_CHARGE_POWER"]["ts"] == 1700000000000 and ev["EV_CHARGE_POWER"]["ts_source"] == "DEVICE"
    assert ev["SOC"]["quality"] == "BAD" and ev["SOC"]["value"] == 130.0  # out of range, flagged not dropped
    after_restart = [r for r in records if r["device_id"] == "BBB6039"]
    assert len(after_restart) == 28 and all(r["ts_source"] == "DEVICE" for r in after_restart)
    st = conn.runtime.status()["devices"]["smx-fleet"]
    assert st["consecutive_failures"] == 0 and st["state"] == "up"
