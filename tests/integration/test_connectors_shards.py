"""Two `edream connectors run --shard i/2` processes share one config on a real broker: a pymodbus wallbox fleet
and an MQTT (amqtt) SMX gateway fleet. Every device's readings come from exactly one process, together they cover
every device, and every DeviceCommand is executed once, by the shard that owns its device."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.command_client import produce_commands
from connectors.commands import command_record
from connectors.config import ModbusPoint
from connectors.models import DeviceAction, Phase, Quantity, now_ms
from connectors.shard import Shard
from connectors.testing import consume
from edream.settings import Settings
from tools.sim.modbus_fleet import ModbusFleet
from tools.sim.mqtt_broker import MqttBroker
from tools.sim.smx_publisher import SmxPublisherFleet, gateway_id

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WALLBOXES = [f"wb-{i}" for i in range(1, 9)]
GATEWAYS = [gateway_id(i) for i in range(6)]
POINTS = [
    ModbusPoint.model_validate({"address": 0, "type": "float32", "quantity": "P_ACTIVE", "unit": "W"}),
    ModbusPoint.model_validate({"address": 10, "type": "uint16", "quantity": "CURRENT", "unit": "A"}),
]


def _config(folder: Path, topics: dict[str, str], modbus: list[tuple[str, int, int]], mqtt_port: int) -> None:
    lines = [
        f"connector: {{id: it-shards, topic: {topics['out']}, linger_ms: 5, commands: {topics['commands']},"
        f" command_results: {topics['results']}, deadletter: {topics['dlq']}}}",
        "devices:",
        f'  - {{id: smx-fleet, protocol: mqtt, broker_port: {mqtt_port}, topic: "+/SMX/", device_id_level: 0,'
        " format: smx}",
    ]
    for dev_id, (host, port, unit) in zip(WALLBOXES, modbus, strict=True):
        lines.append(
            f"  - {{id: {dev_id}, protocol: modbus, host: {host}, port: {port}, unit_id: {unit},"
            " poll_interval_s: 0.3, registers: [{address: 0, type: float32, quantity: P_ACTIVE, unit: W},"
            " {address: 10, type: uint16, quantity: CURRENT, unit: A}], controls: {SET_CURRENT_A: {address: 10}}}"
        )
    (folder / "site.yaml").write_text("\n".join(lines) + "\n")


def _covered(records: list[dict[str, Any]]) -> bool:
    per_device = Counter(r["device_id"] for r in records)
    return all(per_device[d] >= 6 for d in WALLBOXES) and all(per_device[g] >= 28 * 2 for g in GATEWAYS)


def test_two_shard_processes_split_the_fleet_and_its_commands(
    tmp_path: Path,
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    test_settings: Settings,
) -> None:
    owners = {d: [i for i in range(2) if Shard(i, 2).owns(d)] for d in WALLBOXES + GATEWAYS}
    assert {o[0] for d, o in owners.items() if d in WALLBOXES} == {0, 1}, "both shards own wallboxes"
    assert {o[0] for d, o in owners.items() if d in GATEWAYS} == {0, 1}, "both shards own gateways"
    topics = {
        "out": unique_topic("shards.meas", partitions=2),
        "commands": unique_topic("shards.cmd", partitions=2),
        "results": unique_topic("shards.res"),
        "dlq": unique_topic("shards.dlq"),
    }
    now = now_ms()
    commands = [
        command_record(d, "", DeviceAction.SET_CURRENT_A, float(7 + i), now, now + 120_000, "it", now)
        for i, d in enumerate(WALLBOXES)
    ]
    produce_commands(test_settings, kafka_bootstrap, topics["commands"], commands)
    broker = MqttBroker().start()
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_SESSION_TIMEOUT_S": "6",
        "EDREAM_APP_ID": f"it-shards-{uuid.uuid4().hex[:6]}",
        "EDREAM_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(REPO),
    }
    edream = str(Path(sys.executable).with_name("edream"))

    async def scenario() -> tuple[list[dict], list[dict], list[dict]]:
        fleet = await ModbusFleet(
            len(WALLBOXES), points=POINTS, values=lambda u, t: {(Quantity.P_ACTIVE, Phase.TOTAL): 3000.0}
        ).start()
        _config(tmp_path, topics, fleet.endpoints, broker.port)
        # shard 0 from the option, shard 1 from the environment (as in a container)
        procs = [
            await asyncio.create_subprocess_exec(
                edream, "connectors", "run", "--config", str(tmp_path), "--shard", "0/2",
                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            ),
            await asyncio.create_subprocess_exec(
                edream, "connectors", "run", "--config", str(tmp_path),
                env=env | {"EDREAM_CONNECTOR_SHARD": "1/2"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            ),
        ]  # fmt: skip
        pub = SmxPublisherFleet(broker.host, broker.port, len(GATEWAYS), interval_s=0.5)
        try:
            results = await asyncio.to_thread(
                consume, kafka_bootstrap, topics["results"], lambda rs: len(rs) >= len(commands), 90
            )
            pub.start()
            readings = await asyncio.to_thread(consume, kafka_bootstrap, topics["out"], _covered, 90)
            await asyncio.sleep(2.0)  # a late duplicate result would arrive in this window
        finally:
            pub.stop()
            statuses = []
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
                out, err = await asyncio.wait_for(p.communicate(), 60)
                assert p.returncode == 0, err.decode()[-3000:]
                statuses.append(json.loads(out.decode().strip().splitlines()[-1]))
            await fleet.stop()
        # the whole results topic: waits the full 15 s unless a duplicate result shows up
        results = await asyncio.to_thread(
            consume, kafka_bootstrap, topics["results"], lambda rs: len(rs) > len(commands), 15
        )
        return statuses, readings, results

    try:
        statuses, readings, results = asyncio.run(scenario())
    finally:
        broker.stop()

    # each process ran exactly the wallboxes its shard owns (the MQTT fleet entry runs in both)
    assert [s["shard"] for s in statuses] == ["0/2", "1/2"]
    ran = [set(s["devices"]) - {"smx-fleet"} for s in statuses]
    assert ran == [{d for d in WALLBOXES if owners[d] == [i]} for i in range(2)]
    assert all(s["devices"]["smx-fleet"]["readings"] > 0 for s in statuses)

    # on the topic: every device present, each device's seq numbers unique (one producer per device)
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in readings:
        seqs[r["device_id"]].append(r["seq"])
    assert set(seqs) == set(WALLBOXES) | set(GATEWAYS)
    for dev, ss in seqs.items():
        assert len(ss) == len(set(ss)), f"{dev}: readings from more than one process"
        assert sorted(ss) == list(range(1, len(ss) + 1)), f"{dev}: gap in seq"

    # every command executed once, by its owner; the other shard skipped it
    assert sorted(r["command_id"] for r in results) == sorted(c["command_id"] for c in commands)
    assert {r["status"] for r in results} == {"EXECUTED"}
    for i, s in enumerate(statuses):
        counts = s["commands"]["counts"]
        mine = sum(owners[d] == [i] for d in WALLBOXES)
        assert counts.get("EXECUTED") == mine and counts.get("skipped:other_shard") == len(WALLBOXES) - mine
        assert s["commands"]["group"].endswith(f"-it-shards-commands-shard-{i}-of-2")
    current = {r["device_id"]: r["value"] for r in readings if r["quantity"] == Quantity.CURRENT.value}
    assert {d: current[d] for d in WALLBOXES} == {d: float(7 + i) for i, d in enumerate(WALLBOXES)}
