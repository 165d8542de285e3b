"""Pure mapping of protocol payloads to readings: Modbus blocks, MQTT JSON, HTTP documents, OPC UA values."""

from __future__ import annotations

import json
import math
import struct

import pytest
from asyncua import ua

from connectors.config import HttpDevice, ModbusDevice, MqttDevice, OpcuaDevice
from connectors.http_poll import readings_from_document, unseen
from connectors.modbus import plan_for, readings_from_blocks
from connectors.modbus_codec import encode
from connectors.models import Quality, Quantity, Reading, SourceProtocol, TsSource
from connectors.mqtt import PayloadError, readings_from_message
from connectors.opcua import reading_from_datavalue


def test_modbus_blocks_to_readings_with_nan_and_range() -> None:
    dev = ModbusDevice.model_validate(
        {
            "id": "m",
            "protocol": "modbus",
            "host": "h",
            "prosumer_id": "p",
            "registers": [
                {"address": 0, "type": "float32", "quantity": "P_ACTIVE", "unit": "kW"},
                {"address": 2, "type": "float32", "quantity": "Q_REACTIVE", "unit": "var"},
                {
                    "address": 4,
                    "type": "int16",
                    "scale": 0.1,
                    "quantity": "SOC",
                    "unit": "%",
                    "min": 0,
                    "max": 100,
                },
                {
                    "address": 10,
                    "type": "uint32",
                    "word_order": "little",
                    "quantity": "E_IMPORT",
                    "unit": "Wh",
                },
            ],
        }
    )
    blocks = plan_for(dev)
    assert [(b.address, b.count) for b in blocks] == [(0, 5), (10, 2)]
    nan = list(struct.unpack(">2H", struct.pack(">f", math.nan)))
    data = [
        encode(1.5, dev.registers[0].type) + nan + encode(1234, dev.registers[2].type),
        encode(70000, dev.registers[3].type, dev.registers[3].word_order),
    ]
    rs = {r.quantity: r for r in readings_from_blocks(dev, blocks, data, ts=7)}
    assert rs[Quantity.P_ACTIVE].value == 1500.0 and rs[Quantity.P_ACTIVE].unit == "W"
    assert rs[Quantity.Q_REACTIVE].value is None and rs[Quantity.Q_REACTIVE].quality is Quality.BAD
    assert rs[Quantity.SOC].value == pytest.approx(123.4) and rs[Quantity.SOC].quality is Quality.BAD
    assert rs[Quantity.E_IMPORT].value == 70000.0
    assert {(r.ts, r.ts_source, r.prosumer_id) for r in rs.values()} == {(7, TsSource.POLL, "p")}


def _mqtt(**kw: object) -> MqttDevice:
    return MqttDevice.model_validate(
        {
            "id": "fleet",
            "protocol": "mqtt",
            "topic": "s/+/st",
            "device_id_level": 1,
            "fields": [{"path": "d.p", "quantity": "P_ACTIVE", "unit": "W"}],
            **kw,
        }
    )


def test_mqtt_json_device_id_from_topic_and_timestamps() -> None:
    dev = _mqtt(timestamp={"path": "t", "format": "iso"})
    rs = readings_from_message(
        dev, "s/ev7/st", json.dumps({"t": "2024-01-01T00:00:00Z", "d": {"p": "1.2k"}}), 5
    )
    assert (rs[0].device_id, rs[0].value, rs[0].ts, rs[0].ts_source) == (
        "ev7",
        1200.0,
        1704067200000,
        TsSource.DEVICE,
    )
    rs = readings_from_message(dev, "s/ev7/st", b'{"t": "yesterday", "d": {}}', 5)
    assert (rs[0].value, rs[0].quality, rs[0].ts, rs[0].ts_source) == (None, Quality.BAD, 5, TsSource.POLL)
    with pytest.raises(PayloadError):
        readings_from_message(dev, "s/ev7/st", b"\x00garbage", 5)


def test_http_document_spotlink_ev_local_time() -> None:
    dev = HttpDevice.model_validate(
        {
            "id": "zoe",
            "protocol": "http",
            "base_url": "http://x",
            "resources": [
                {
                    "path": "ev/",
                    "timestamp": {
                        "path": "timestamp",
                        "format": "%Y-%m-%d %H:%M:%S",
                        "timezone": "Europe/Rome",
                    },
                    "fields": [{"path": "batteryPerc", "quantity": "SOC", "unit": "%"}],
                }
            ],
        }
    )
    doc = {"batteryPerc": "0", "timestamp": "2019-12-24 08:17:08"}  # CET = UTC+1 in winter
    (r,) = readings_from_document(dev, dev.resources[0], doc, poll_ts=1)
    assert (r.value, r.ts, r.ts_source) == (0.0, 1577171828000, TsSource.DEVICE)


def test_a_polled_payload_reading_is_sent_once_until_its_timestamp_or_value_moves() -> None:
    """SpotLink's last charge session (timestamp = its end) is polled every minute: sent once, not every minute."""

    def r(ts: int, kwh: float, src: TsSource = TsSource.DEVICE) -> Reading:
        return Reading("evse", Quantity.E_IMPORT, kwh * 1000, "Wh", ts, src, SourceProtocol.HTTP)

    first, seen = unseen([r(1_000, 5.0)], set())
    assert first == [r(1_000, 5.0)]
    again, seen = unseen([r(1_000, 5.0)], seen)
    assert again == []
    assert unseen([r(1_000, 5.0), r(2_000, 7.5)], seen)[0] == [r(2_000, 7.5)]  # a new session
    assert unseen([r(1_000, 6.0)], seen)[0] == [r(1_000, 6.0)]  # the vendor corrected the session's energy
    assert unseen([r(1_000, 5.0, TsSource.POLL)], seen)[0] == [r(1_000, 5.0, TsSource.POLL)]  # poll time: new


def test_opcua_datavalue() -> None:
    from datetime import UTC, datetime

    dev = OpcuaDevice.model_validate(
        {
            "id": "o",
            "protocol": "opcua",
            "endpoint": "opc.tcp://h:4840",
            "nodes": [{"node_id": "ns=2;s=P", "quantity": "P_ACTIVE", "unit": "kW"}],
        }
    )
    dv = ua.DataValue(ua.Variant(2.5), SourceTimestamp=datetime(2024, 1, 1, tzinfo=UTC))
    r = reading_from_datavalue(dev, dev.nodes[0], dv, 2.5, recv_ts=9)
    assert (r.value, r.ts, r.ts_source, r.quality) == (2500.0, 1704067200000, TsSource.DEVICE, Quality.GOOD)
    bad = ua.DataValue(ua.Variant(2.5), StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
    r = reading_from_datavalue(dev, dev.nodes[0], bad, 2.5, recv_ts=9)
    assert (r.ts, r.ts_source, r.quality) == (9, TsSource.POLL, Quality.BAD)
