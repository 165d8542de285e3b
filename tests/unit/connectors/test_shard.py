"""Sharding a fleet over connector processes: spec parsing, stable assignment, MQTT fleet and command filters."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from connectors.command_service import CommandService
from connectors.config import ConnectorSettings, LoadedConfig, ModbusDevice, MqttDevice
from connectors.shard import ALL_DEVICES, Shard, ShardSpecError, parse_shard, shard_devices
from edream.settings import Settings


@pytest.mark.parametrize(
    "spec,message",
    [
        ("2/2", "index must be in 0..1, got 2"),
        ("0/0", "count must be at least 1, got 0"),
        ("-1/2", "expected i/N"),
        ("1", "expected i/N"),
        ("a/b", "expected i/N"),
        ("1/2/3", "expected i/N"),
    ],
)
def test_bad_specs_fail_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(ShardSpecError, match=message) as err:
        parse_shard(spec, "EDREAM_CONNECTOR_SHARD")
    assert str(err.value).startswith(f"EDREAM_CONNECTOR_SHARD {spec!r}: ")


def test_specs_parse_and_empty_means_every_device() -> None:
    assert parse_shard("1/3") == Shard(1, 3) and parse_shard(" 0 / 2 ") == Shard(0, 2)
    assert parse_shard(None) == parse_shard("") == ALL_DEVICES == Shard(0, 1)
    assert Shard(1, 3).label == "1/3" and Shard(1, 3).suffix == "-shard-1-of-3" and ALL_DEVICES.suffix == ""


def test_every_device_has_exactly_one_owner_by_crc32() -> None:
    ids = [f"meter-{i}" for i in range(1000)]
    for n in (1, 2, 3, 7):
        owners = {d: [i for i in range(n) if Shard(i, n).owns(d)] for d in ids}
        assert all(len(o) == 1 for o in owners.values())
        assert all(owners[d] == [zlib.crc32(d.encode()) % n] for d in ids)  # stable, not Python's hash
        sizes = [sum(o == [i] for o in owners.values()) for i in range(n)]
        assert min(sizes) > 1000 / n * 0.8  # spread evenly enough


def _modbus(dev_id: str) -> ModbusDevice:
    return ModbusDevice.model_validate(
        {
            "id": dev_id,
            "protocol": "modbus",
            "host": "h",
            "registers": [{"address": 0, "type": "int16", "quantity": "SOC", "unit": "%"}],
            "controls": {"STOP": {"address": 1, "value": 0}},
        }
    )


def test_shards_split_single_devices_and_all_run_a_fleet_config() -> None:
    fleet = MqttDevice.model_validate(
        {"id": "smx", "protocol": "mqtt", "topic": "+/SMX/", "device_id_level": 0, "format": "smx"}
    )
    devices = [fleet] + [_modbus(f"kiwi-{i}") for i in range(20)]
    per_shard = [{d.id for d in shard_devices(devices, Shard(i, 2))} for i in range(2)]
    assert per_shard[0] & per_shard[1] == {"smx"}
    assert per_shard[0] | per_shard[1] == {d.id for d in devices}
    assert shard_devices(devices, ALL_DEVICES) == devices


def test_mqtt_fleet_messages_are_kept_only_by_the_owning_shard() -> None:
    import asyncio

    from connectors.mqtt import MqttSession
    from connectors.producer import ListSink
    from connectors.runtime import ConnectorRuntime, DeviceContext
    from tools.sim.smx_publisher import EXAMPLE

    fleet = MqttDevice.model_validate(
        {"id": "smx", "protocol": "mqtt", "topic": "+/SMX/", "device_id_level": 0, "format": "smx"}
    )
    gateways = [f"BBB{i:05d}" for i in range(12)]

    class Msg:
        def __init__(self, topic: str):
            self.topic, self.payload = topic, EXAMPLE.read_bytes()

    async def run(shard: Shard) -> set[str]:
        sink = ListSink()
        rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(id="c"), [fleet]), sink, shard=shard)
        session = MqttSession(rt, "127.0.0.1", 1, None, None, "test")
        session.attach(DeviceContext(rt, fleet))
        for g in gateways:
            session._on_message(session.client, None, Msg(f"{g}/SMX/"))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the drain runs on the loop
        return {key for key, _ in sink.records}

    seen = [asyncio.run(run(Shard(i, 2))) for i in range(2)]
    assert seen[0] and seen[1] and not seen[0] & seen[1] and seen[0] | seen[1] == set(gateways)
    assert all(Shard(i, 2).owns(g) for i in range(2) for g in seen[i])


def test_command_service_of_a_shard_executes_only_its_devices(tmp_path: Path) -> None:
    devices = [_modbus(f"kiwi-{i}") for i in range(6)]
    disabled = {"kiwi-off-1": tmp_path / "c.yaml", "kiwi-off-2": tmp_path / "c.yaml"}
    cfg = LoadedConfig(
        ConnectorSettings(id="c", commands="cmds"),
        devices,
        device_files={d.id: tmp_path / "c.yaml" for d in devices} | disabled,
    )
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    services = [CommandService(cfg, settings, "127.0.0.1:1", shard=Shard(i, 2)) for i in range(2)]
    try:
        mine = [set(s.devices) | s.disabled for s in services]
        assert not mine[0] & mine[1] and mine[0] | mine[1] == set(cfg.device_files)
        assert services[0].foreign == mine[1] and services[1].foreign == mine[0]
        assert services[0].group_id.endswith("-c-commands-shard-0-of-2") != services[1].group_id
        # an undecodable command is dead-lettered by exactly one shard
        for key in (b"kiwi-1", b"kiwi-2", None, b"\xff\xfe"):
            assert sum(s._dead_letters(key) for s in services) == 1
    finally:
        for s in services:
            s._producer.close(0.1)


@pytest.mark.parametrize(
    "args,env,message",
    [
        (
            ["--shard", "2/2"],
            {},
            "--shard (or EDREAM_CONNECTOR_SHARD) '2/2': shard index must be in 0..1, got 2",
        ),
        ([], {"EDREAM_CONNECTOR_SHARD": "half"}, "'half': expected i/N"),
    ],
)
def test_run_refuses_a_bad_shard_before_connecting(args: list[str], env: dict, message: str) -> None:
    from typer.testing import CliRunner

    from connectors.cli import app

    result = CliRunner().invoke(app, ["run", "--config", "connectors/config", *args], env=env)
    assert result.exit_code == 1 and message in result.output
