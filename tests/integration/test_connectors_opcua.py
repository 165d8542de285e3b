"""OPC UA: asyncua server -> connector subscriptions -> real broker; source timestamps, kW->W, bad status,
server restart with re-subscription."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asyncua import ua

from connectors.app import Connector
from connectors.testing import consume
from edream.settings import Settings
from tools.sim.opcua_server import FeederServer

pytestmark = pytest.mark.integration


async def _until(cond: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not cond():
            await asyncio.sleep(0.05)


def test_opcua_subscription_values_timestamps_and_server_restart(
    tmp_path: Path, kafka_bootstrap: str, unique_topic: Callable[..., str], test_settings: Settings
) -> None:
    topic = unique_topic("conn.opcua")

    async def scenario() -> tuple[list[dict], list[int]]:
        srv = await FeederServer(n_households=1).start(simulate=False)
        (tmp_path / "c.yaml").write_text(f"""
connector: {{id: it-opcua, topic: {topic}, linger_ms: 5}}
devices:
  - id: feeder-1
    protocol: opcua
    endpoint: {srv.endpoint}
    publishing_interval_ms: 50
    timeout_s: 2
    backoff_initial_s: 0.2
    backoff_max_s: 0.5
    nodes:
      - {{node_id: "ns=2;s=Feeder1.P", quantity: P_ACTIVE, unit: kW}}
      - {{node_id: "ns=2;s=Feeder1.Frequency", quantity: FREQUENCY, unit: Hz, min: 45, max: 55}}
""")
        conn = Connector(tmp_path, test_settings, kafka_bootstrap)
        rt = conn.runtime
        stamps = [1_700_000_000_000 + i * 5000 for i in range(4)]

        def at(ms: int) -> datetime:
            return datetime.fromtimestamp(ms / 1000, UTC)

        async with conn:
            await _until(lambda: "feeder-1" in rt.statuses and rt.statuses["feeder-1"].state == "up")
            await _until(lambda: rt.seq("feeder-1") >= 2)  # initial values on subscribe
            await srv.write("Feeder1.P", 12.5, at(stamps[0]))
            await _until(lambda: rt.seq("feeder-1") >= 3)
            await srv.write("Feeder1.Frequency", 61.0, at(stamps[1]))  # out of range -> BAD
            await _until(lambda: rt.seq("feeder-1") >= 4)
            await srv.write("Feeder1.P", 13.0, at(stamps[2]), ua.StatusCode(ua.StatusCodes.BadSensorFailure))
            await _until(lambda: rt.seq("feeder-1") >= 5)
            port = srv.port
            await srv.stop()
            await _until(lambda: rt.statuses["feeder-1"].state == "down")
            seq = rt.seq("feeder-1")
            srv = await FeederServer(port=port, n_households=1).start(simulate=False)
            await _until(lambda: rt.statuses["feeder-1"].state == "up")
            await _until(lambda: rt.seq("feeder-1") >= seq + 2)  # re-subscribed: initial values again
            await srv.write("Feeder1.P", -4.25, at(stamps[3]))
            await _until(lambda: rt.seq("feeder-1") >= seq + 3)
        await srv.stop()
        total = rt.seq("feeder-1")
        return await asyncio.to_thread(consume, kafka_bootstrap, topic, lambda rs: len(rs) >= total), stamps

    records, stamps = asyncio.run(scenario())
    by_ts = {r["ts"]: r for r in records}
    p = by_ts[stamps[0]]
    assert (p["quantity"], p["value"], p["unit"], p["quality"], p["ts_source"], p["source_protocol"]) == (
        "P_ACTIVE",
        12500.0,
        "W",
        "GOOD",
        "DEVICE",
        "OPCUA",
    )
    f = by_ts[stamps[1]]
    assert (f["quantity"], f["value"], f["unit"], f["quality"]) == ("FREQUENCY", 61.0, "Hz", "BAD")
    assert by_ts[stamps[2]]["quality"] == "BAD"  # bad OPC UA status code
    after = by_ts[stamps[3]]
    assert (after["value"], after["quality"]) == (-4250.0, "GOOD")
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
