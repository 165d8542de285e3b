"""Device commands through a real connector: DeviceCommands on the embedded broker -> the SpotLink EV API
simulator over HTTP (and a pymodbus server) -> DeviceCommandResults, dead letters and committed offsets."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.app import Connector
from connectors.command_client import produce_commands
from connectors.commands import command_record
from connectors.models import DeviceAction, Phase, Quantity, now_ms
from connectors.testing import consume
from edream.embedded.process import free_port
from edream.settings import Settings
from tools.sim.ev_api import EvApiServer
from tools.sim.modbus_fleet import ModbusFleet

pytestmark = pytest.mark.integration

SET = DeviceAction.SET_CURRENT_A


@pytest.fixture
def ev_api() -> Iterator[EvApiServer]:
    srv = EvApiServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def topics(unique_topic: Callable[..., str]) -> dict[str, str]:
    return {
        "out": unique_topic("cmd.meas"),
        "commands": unique_topic("cmd.commands"),
        "results": unique_topic("cmd.results"),
        "deadletter": unique_topic("cmd.dlq"),
    }


def _write_config(folder: Path, topics: dict[str, str], devices: str) -> str:
    cid = f"it-cmd-{uuid.uuid4().hex[:6]}"
    (folder / "c.yaml").write_text(f"""
connector:
  id: {cid}
  topic: {topics["out"]}
  linger_ms: 5
  commands: {topics["commands"]}
  command_results: {topics["results"]}
  deadletter: {topics["deadletter"]}
devices:
{devices}
""")
    return cid


def _spotlink(dev_id: str, base_url: str, backoff: str = "") -> str:
    return f"""
  - id: {dev_id}
    protocol: http
    base_url: {base_url}
    poll_interval_s: 1
    timeout_s: 5  # a loaded CI machine can take over 1 s to answer; a retry would count 2 attempts
    {backoff}
    resources:
      - path: 'chargeboxes/{{"chargeboxID":"24"}}'
        fields: [{{path: maxPwrAC, quantity: CURRENT, unit: A}}]
    controls: {{api: spotlink, chargeboxes: {{"24": "37"}}}}
"""


def _cmd(device: str, action: DeviceAction, value: float | None, valid_s: float = 60.0, **kw: Any) -> dict:
    now = now_ms()
    rec = command_record(
        device, kw.pop("target", "24"), action, value, now, now + int(valid_s * 1000), "it", now
    )
    return rec | kw


def _results(bootstrap: str, topic: str, n: int, max_wait_s: float = 60.0) -> dict[str, dict]:
    got = consume(bootstrap, topic, lambda rs: len(rs) >= n, max_wait_s=max_wait_s)
    return {r["command_id"]: r for r in got}


def test_commands_reach_the_charger_once_and_every_outcome_is_reported(
    tmp_path: Path,
    ev_api: EvApiServer,
    kafka_bootstrap: str,
    topics: dict[str, str],
    test_settings: Settings,
    read_topic: Callable[..., list],
) -> None:
    cid = _write_config(
        tmp_path,
        topics,
        _spotlink("evse-1", ev_api.base_url)
        + """
  - id: meter-1
    protocol: modbus
    host: 127.0.0.1
    port: 1
    registers: [{address: 0, type: uint16, quantity: CURRENT, unit: A}]
""",
    )
    set16 = _cmd("evse-1", SET, 16.0)
    now = now_ms()
    commands = [
        set16,
        set16 | {"value": 20.0},  # redelivered id (here with another value): must not run again
        _cmd("evse-1", SET, 20.0, command_id="late", valid_from=now - 120_000, valid_until=now - 60_000),
        _cmd("evse-1", SET, 80.0, command_id="too-high"),
        _cmd("not-mine", SET, 16.0, command_id="other-connector"),
        _cmd("meter-1", SET, 16.0, command_id="no-control"),
        _cmd("evse-1", SET, 16.0, command_id="unknown-box", target="99"),
        _cmd("evse-1", SET, 0.0, command_id="stop"),  # 0 A = stop charging
    ]
    produce_commands(test_settings, kafka_bootstrap, topics["commands"], commands)
    garbage = b"\xc3\x01not a command"
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(topics["commands"], garbage, b"evse-1")
    p.flush(10)

    async def scenario() -> tuple[Connector, dict[str, dict]]:
        conn = Connector(tmp_path, test_settings, kafka_bootstrap)
        async with conn:
            res = await asyncio.to_thread(_results, kafka_bootstrap, topics["results"], 6)
            async with asyncio.timeout(20):  # the dead letter's offset is the last one to complete
                while conn.commands.offsets.in_progress or conn.commands.counts["skipped:undecodable"] < 1:
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # a commit round after the last completion
        return conn, res

    conn, results = asyncio.run(scenario())

    # the simulator: one setPower 16 (the duplicate with 20 A never arrived), then the stop on socket 37
    assert ev_api.state.commands == [
        ("setPower", {"chargeboxID": "24", "powerValue": "16"}),
        ("stopChargebox", {"chargeboxID": "24", "socketID": "37"}),
    ]
    assert ev_api.state.current_a == {"24": 16} and ev_api.state.charging == {"24": False}

    outcome = {k: (r["status"], r["attempts"]) for k, r in results.items()}
    assert outcome == {
        set16["command_id"]: ("EXECUTED", 1),
        "late": ("EXPIRED", 0),
        "too-high": ("INVALID", 0),
        "no-control": ("UNSUPPORTED", 0),
        "unknown-box": ("UNSUPPORTED", 0),
        "stop": ("EXECUTED", 1),
    }
    assert results[set16["command_id"]]["detail"] == "SET_OK" and results["stop"]["detail"] == "STOP_OK"
    assert "64" in results["too-high"]["detail"]
    assert {r["_key"] for r in results.values()} == {"evse-1", "meter-1"}
    assert all(r["_key"] == r["device_id"] for r in results.values())
    # nothing else was answered: no result for another connector's device, none for the duplicate
    assert len(read_topic(topics["results"], 7, timeout=3)) == 6

    (dl,) = consume(kafka_bootstrap, topics["deadletter"], lambda rs: len(rs) >= 1)
    assert dl["source_topic"] == topics["commands"] and dl["offset"] == 8 and dl["original"] == garbage
    assert dl["stage"] == f"connector:{cid}:commands" and dl["_key"] == topics["commands"]

    # every message's offset was committed, once its result or dead letter was acknowledged
    c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"edream-{cid}-commands"})
    try:
        (committed,) = c.committed([TopicPartition(topics["commands"], 0)], timeout=10)
    finally:
        c.close()
    assert committed.offset == 9

    m = conn.metrics.registry.get_sample_value
    assert m("connector_commands_total", {"action": "SET_CURRENT_A", "status": "EXECUTED"}) == 2
    assert m("connector_commands_total", {"action": "SET_CURRENT_A", "status": "UNSUPPORTED"}) == 2
    for reason in ("duplicate", "other_device", "undecodable"):
        assert m("connector_commands_skipped_total", {"reason": reason}) == 1, reason
    assert conn.status()["commands"]["counts"]["EXECUTED"] == 2


def test_charger_down_then_up_is_retried_until_executed_and_never_up_fails(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], test_settings: Settings
) -> None:
    late_port, dead_port = free_port(), free_port()
    backoff = "backoff_initial_s: 0.2\n    backoff_max_s: 0.5"
    _write_config(
        tmp_path,
        topics,
        _spotlink("evse-late", f"http://127.0.0.1:{late_port}/public/api", backoff)
        + _spotlink("evse-dead", f"http://127.0.0.1:{dead_port}/public/api", backoff),
    )
    first = _cmd("evse-late", SET, 32.0, command_id="late-up")
    produce_commands(test_settings, kafka_bootstrap, topics["commands"], [first])
    api: EvApiServer | None = None

    async def scenario() -> dict[str, dict]:
        nonlocal api
        conn = Connector(tmp_path, test_settings, kafka_bootstrap)
        async with conn:
            async with asyncio.timeout(30):  # consuming, and the charger API refuses connections
                while conn.commands.offsets.in_progress < 1:
                    await asyncio.sleep(0.1)
            produce_commands(
                test_settings, kafka_bootstrap, topics["commands"], [_cmd("evse-dead", SET, 16.0, 8.0)]
            )
            await asyncio.sleep(2.0)
            api = EvApiServer(port=late_port).start()
            return await asyncio.to_thread(_results, kafka_bootstrap, topics["results"], 2)

    t0 = time.monotonic()
    try:
        results = asyncio.run(scenario())
    finally:
        if api is not None:
            api.stop()
    assert api is not None and api.state.current_a == {"24": 32}
    late = results["late-up"]
    assert late["status"] == "EXECUTED" and late["attempts"] > 1 and late["detail"] == "SET_OK"
    (dead,) = [r for r in results.values() if r["device_id"] == "evse-dead"]
    assert dead["status"] == "FAILED" and dead["attempts"] >= 2 and "ConnectError" in dead["detail"]
    assert time.monotonic() - t0 < 60


def test_modbus_setpoint_is_written_to_the_declared_register(
    tmp_path: Path, kafka_bootstrap: str, topics: dict[str, str], test_settings: Settings
) -> None:
    from connectors.config import ModbusPoint

    points = [
        ModbusPoint.model_validate({"address": 0, "type": "float32", "quantity": "P_ACTIVE", "unit": "W"}),
        ModbusPoint.model_validate({"address": 10, "type": "uint16", "quantity": "CURRENT", "unit": "A"}),
    ]

    async def scenario() -> tuple[dict[str, dict], list[dict]]:
        fleet = await ModbusFleet(
            1, points=points, values=lambda unit, t: {(Quantity.P_ACTIVE, Phase.TOTAL): 3000.0}
        ).start()
        host, port, unit = fleet.endpoints[0]
        _write_config(
            tmp_path,
            topics,
            f"""
  - id: wallbox-1
    protocol: modbus
    host: {host}
    port: {port}
    unit_id: {unit}
    poll_interval_s: 0.2
    registers:
      - {{address: 0, type: float32, quantity: P_ACTIVE, unit: W}}
      - {{address: 10, type: uint16, quantity: CURRENT, unit: A}}
    controls:
      SET_CURRENT_A: {{address: 10}}
      STOP: {{address: 12, value: 0}}   # outside the device's map: it answers "illegal address"
""",
        )
        produce_commands(
            test_settings,
            kafka_bootstrap,
            topics["commands"],
            [
                _cmd("wallbox-1", SET, 16.0, command_id="mb-set"),
                _cmd("wallbox-1", DeviceAction.STOP, None, command_id="mb-stop"),
            ],
        )
        try:
            conn = Connector(tmp_path, test_settings, kafka_bootstrap)
            async with conn:
                res = await asyncio.to_thread(_results, kafka_bootstrap, topics["results"], 2)
                readings = await asyncio.to_thread(
                    consume,
                    kafka_bootstrap,
                    topics["out"],
                    lambda rs: any(r["quantity"] == "CURRENT" and r["value"] == 16.0 for r in rs),
                )
        finally:
            await fleet.stop()
        return res, readings

    results, readings = asyncio.run(scenario())
    assert (results["mb-set"]["status"], results["mb-set"]["attempts"]) == ("EXECUTED", 1)
    assert results["mb-set"]["detail"] == "wrote [16] to holding register 10 (unit 1)"
    # refused by the device (Modbus exception 2): failed at once, not retried
    assert (results["mb-stop"]["status"], results["mb-stop"]["attempts"]) == ("FAILED", 1)
    assert "exception_code=2" in results["mb-stop"]["detail"]
    currents = [r["value"] for r in readings if r["quantity"] == "CURRENT"]
    assert currents[0] == 0.0 or 16.0 in currents  # polled before and after the write
    assert currents[-1] == 16.0


def test_cli_command_sends_one_set_point_and_prints_its_result(
    tmp_path: Path,
    ev_api: EvApiServer,
    kafka_bootstrap: str,
    topics: dict[str, str],
    test_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import threading

    from typer.testing import CliRunner

    from connectors.cli import app

    _write_config(tmp_path, topics, _spotlink("evse-1", ev_api.base_url))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    stop = threading.Event()

    async def run_connector() -> None:
        async with Connector(tmp_path, test_settings, kafka_bootstrap):
            await asyncio.to_thread(stop.wait)

    th = threading.Thread(target=asyncio.run, args=(run_connector(),))
    th.start()
    try:
        runner = CliRunner()
        ok = runner.invoke(
            app, ["command", "evse-1", "--target", "24", "--set-current", "16", "-c", str(tmp_path)]
        )
        bad = runner.invoke(
            app, ["command", "evse-1", "--target", "24", "--set-current", "70", "-c", str(tmp_path)]
        )
        unknown = runner.invoke(app, ["command", "nope", "--stop", "-c", str(tmp_path)])
    finally:
        stop.set()
        th.join(30)
    assert ok.exit_code == 0, ok.output
    result = json.loads(ok.stdout.strip().splitlines()[-1])
    assert (result["device_id"], result["status"], result["detail"]) == ("evse-1", "EXECUTED", "SET_OK")
    assert ev_api.state.current_a == {"24": 16}
    assert bad.exit_code == 1 and json.loads(bad.stdout.strip().splitlines()[-1])["status"] == "INVALID"
    assert unknown.exit_code == 1 and "device 'nope' is not in" in unknown.output
