"""HTTP polling of the SpotLink EV API (local server with the spec's example responses) -> real broker, and the
charger command interface (start/stop/setPower 7..64 A)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connectors.app import Connector
from connectors.http_poll import CommandError, EvChargerCommands
from connectors.testing import consume
from edream.settings import Settings
from tools.sim.ev_api import EvApiServer

pytestmark = pytest.mark.integration


@pytest.fixture
def ev_api() -> Iterator[EvApiServer]:
    srv = EvApiServer().start()
    yield srv
    srv.stop()


def test_http_poll_spec_responses(
    tmp_path: Path,
    ev_api: EvApiServer,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    test_settings: Settings,
) -> None:
    topic = unique_topic("conn.http")
    (tmp_path / "c.yaml").write_text(f"""
connector: {{id: it-http, topic: {topic}, linger_ms: 5}}
devices:
  - id: zoe-1
    protocol: http
    base_url: {ev_api.base_url}
    poll_interval_s: 0.2
    resources:
      - path: 'ev/{{"vehicleID":"-LRGfW9NO0SNzKtnbxZ8"}}'
        timestamp: {{path: timestamp, format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Rome}}
        fields:
          - {{path: batteryPerc, quantity: SOC, unit: "%", min: 0, max: 100}}
  - id: evse-24
    protocol: http
    base_url: {ev_api.base_url}
    poll_interval_s: 0.2
    resources:
      - path: 'historyCharges/{{"chargeboxID":"24"}}'
        timestamp: {{path: recharges.0.dataStop, format: "%Y-%m-%d %H:%M:%S", timezone: Europe/Rome}}
        fields:
          - {{path: recharges.0.kwTot, quantity: E_IMPORT, unit: kWh}}
          - {{path: recharges.0.missing, quantity: OTHER, unit: "1"}}
""")

    async def scenario() -> tuple[Connector, list[dict]]:
        conn = Connector(tmp_path, test_settings, kafka_bootstrap)
        async with conn:
            async with asyncio.timeout(30):
                while conn.runtime.seq("zoe-1") < 1 or conn.runtime.seq("evse-24") < 2:
                    await asyncio.sleep(0.05)
            sent = (conn.runtime.seq("zoe-1"), conn.runtime.seq("evse-24"))
            await asyncio.sleep(1.5)  # seven more polls of the same payloads: nothing new to send
            assert (conn.runtime.seq("zoe-1"), conn.runtime.seq("evse-24")) == sent == (1, 2)
        total = sum(sent)
        return conn, await asyncio.to_thread(consume, kafka_bootstrap, topic, lambda rs: len(rs) >= total)

    conn, records = asyncio.run(scenario())
    soc = [r for r in records if r["device_id"] == "zoe-1"]
    assert soc and all(r["value"] == 0.0 and r["unit"] == "%" and r["quality"] == "GOOD" for r in soc)
    # "2019-06-24 08:17:08" Europe/Rome (CEST) = 06:17:08 UTC
    assert {(r["ts"], r["ts_source"], r["source_protocol"]) for r in soc} == {
        (1561357028000, "DEVICE", "HTTP")
    }
    energy = [r for r in records if r["device_id"] == "evse-24" and r["quantity"] == "E_IMPORT"]
    assert {r["value"] for r in energy} == {11020.0} and {r["unit"] for r in energy} == {"Wh"}
    missing = [r for r in records if r["device_id"] == "evse-24" and r["quantity"] == "OTHER"]
    assert missing and all(r["value"] is None and r["quality"] == "BAD" for r in missing)
    assert conn.runtime.statuses["zoe-1"].state == "up"


def test_ev_charger_commands(ev_api: EvApiServer) -> None:
    async def scenario() -> list[object]:
        cmd = EvChargerCommands(ev_api.base_url)
        out: list[object] = [
            await cmd.start("24", "37"),
            await cmd.set_power("24", 7),
            await cmd.set_power("24", 64),
            await cmd.stop("24", "37"),
        ]
        for bad in (6, 65, 16.5, "32", True):
            with pytest.raises(ValueError):
                await cmd.set_power("24", bad)  # type: ignore[arg-type]
        bogus = EvChargerCommands(ev_api.base_url.replace("/public/api", "/nope"))
        with pytest.raises(CommandError):
            await bogus.start("24", "37")
        await bogus.aclose()
        await cmd.aclose()
        return out

    assert asyncio.run(scenario()) == ["START_OK", "SET_OK", "SET_OK", "STOP_OK"]
    assert ev_api.state.commands == [
        ("startChargebox", {"chargeboxID": "24", "socketID": "37"}),
        ("setPower", {"chargeboxID": "24", "powerValue": "7"}),
        ("setPower", {"chargeboxID": "24", "powerValue": "64"}),
        ("stopChargebox", {"chargeboxID": "24", "socketID": "37"}),
    ]
