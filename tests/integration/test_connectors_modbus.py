"""Modbus/TCP: pymodbus server fleet -> connector -> real broker; values, scaling, word order, device restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.app import Connector
from connectors.models import Phase, Quantity, now_ms
from connectors.testing import consume
from edream.settings import Settings
from tools.sim.devices import Values
from tools.sim.modbus_fleet import ModbusFleet

pytestmark = pytest.mark.integration

EXPECTED: Values = {
    (Quantity.P_ACTIVE, Phase.TOTAL): 1234.5,
    (Quantity.Q_REACTIVE, Phase.TOTAL): -321.25,
    (Quantity.VOLTAGE_LN, Phase.L1): 231.4,
    (Quantity.CURRENT, Phase.L1): 5.37,
    (Quantity.FREQUENCY, Phase.TOTAL): 50.02,
    (Quantity.E_IMPORT, Phase.TOTAL): 123_456_780.0,  # Wh; the register holds 0.01 kWh units
    (Quantity.E_EXPORT, Phase.TOTAL): 42_000.0,
    (Quantity.P_PRODUCTION, Phase.TOTAL): -2500.0,  # int32, little word order
    (Quantity.SOC, Phase.TOTAL): 55.5,
    (Quantity.TEMPERATURE, Phase.TOTAL): -3.2,  # input register, int16, scale 0.1
}
UNITS = {
    Quantity.P_ACTIVE: "W",
    Quantity.Q_REACTIVE: "var",
    Quantity.VOLTAGE_LN: "V",
    Quantity.CURRENT: "A",
    Quantity.FREQUENCY: "Hz",
    Quantity.E_IMPORT: "Wh",
    Quantity.E_EXPORT: "Wh",
    Quantity.P_PRODUCTION: "W",
    Quantity.SOC: "%",
    Quantity.TEMPERATURE: "degC",
}


def _values(unit: int, t_ms: int) -> Values:
    if unit == 2:  # a meter whose SOC register is out of the configured range 0..100
        return {**EXPECTED, (Quantity.SOC, Phase.TOTAL): 150.0}
    return EXPECTED


def _config(tmp: Path, fleet: ModbusFleet, topic: str) -> Path:
    from edream.paths import CONNECTOR_CONFIG_DIR

    (tmp / "profiles.yaml").write_text((CONNECTOR_CONFIG_DIR / "profiles" / "kiwi-fruit.yaml").read_text())
    lines = [f"connector: {{id: it-modbus, topic: {topic}, linger_ms: 5}}", "devices:"]
    for i, (host, port, unit) in enumerate(fleet.endpoints, start=1):
        lines.append(
            f"  - {{id: kiwi-{i}, profile: kiwi-fruit, host: {host}, port: {port}, unit_id: {unit},"
            f" prosumer_id: p{i}, poll_interval_s: 0.2, timeout_s: 1, backoff_initial_s: 0.1,"
            f" backoff_max_s: 0.3}}"
        )
    (tmp / "site.yaml").write_text("\n".join(lines) + "\n")
    return tmp


def test_modbus_values_units_scaling_and_device_restart(
    tmp_path: Path, kafka_bootstrap: str, unique_topic: Callable[..., str], test_settings: Settings
) -> None:
    topic = unique_topic("conn.modbus")

    async def scenario() -> tuple[list[dict], dict, dict, int, int]:
        fleet = await ModbusFleet(2, values=_values).start()
        port = fleet.endpoints[0][1]
        t0 = now_ms()
        conn = Connector(_config(tmp_path, fleet, topic), test_settings, kafka_bootstrap)
        async with conn:
            while conn.runtime.seq("kiwi-1") < 30:
                await asyncio.sleep(0.05)
            await fleet.stop()  # kill the simulated devices
            while conn.runtime.statuses["kiwi-1"].state != "down":
                await asyncio.sleep(0.05)
            down = dict(vars(conn.runtime.statuses["kiwi-1"]))
            seq_down = conn.runtime.seq("kiwi-1")
            fleet = await ModbusFleet(2, values=_values, ports=[port]).start()  # restart on the same port
            while conn.runtime.seq("kiwi-1") < seq_down + 20:
                await asyncio.sleep(0.05)
            up = dict(vars(conn.runtime.statuses["kiwi-1"]))
        await fleet.stop()
        total = conn.runtime.seq("kiwi-1") + conn.runtime.seq("kiwi-2")
        assert conn.producer.buffered == 0
        got = await asyncio.to_thread(consume, kafka_bootstrap, topic, lambda rs: len(rs) >= total)
        return got, down, up, t0, total

    records, down, up, t0, total = asyncio.run(scenario())
    assert len(records) == total
    assert down["state"] == "down" and down["consecutive_failures"] >= 1 and down["last_error"]
    assert up["state"] == "up"
    by_dev: dict[str, list[dict]] = {}
    for r in records:
        assert r["_key"] == r["device_id"]
        by_dev.setdefault(r["device_id"], []).append(r)
    for rs in by_dev.values():
        assert [r["seq"] for r in rs] == list(range(1, len(rs) + 1))  # per-device seq, nothing lost
        assert len({r["event_id"] for r in rs}) == len(rs)  # deterministic ids, no collisions
    for r in records:
        q = Quantity(r["quantity"])
        expected = EXPECTED[(q, Phase(r["phase"]))]
        assert r["unit"] == UNITS[q]
        assert r["source_protocol"] == "MODBUS" and r["ts_source"] == "POLL" and r["ts"] >= t0
        assert r["_ts"] == r["ts"]  # Kafka timestamp = event time
        if r["device_id"] == "kiwi-2" and q is Quantity.SOC:
            assert r["quality"] == "BAD" and r["value"] == pytest.approx(150.0)
            continue
        assert r["quality"] == "GOOD", r
        assert r["value"] == pytest.approx(expected, rel=1e-6, abs=1e-6), r
    assert {r["obis_code"] for r in records if r["quantity"] == "E_IMPORT"} == {"1-0:1.8.0"}
    assert {r["prosumer_id"] for r in by_dev["kiwi-2"]} == {"p2"}
