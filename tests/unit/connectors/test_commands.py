"""Device commands, pure part: which commands a device can execute, validation, retries, offsets, config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.commands import (
    Command,
    CommandStatus,
    OffsetTracker,
    SeenCommands,
    Step,
    Verdict,
    command_record,
    plan_command,
    result_record,
    retry_allowed,
    setpoint_amps,
)
from connectors.config import ConfigError, HttpDevice, ModbusDevice, MqttDevice, load_config
from connectors.control import Refused, register_values
from connectors.modbus_codec import DataType, decode
from connectors.models import DeviceAction
from edream.avro_schemas import load_schema
from edream.paths import CONNECTOR_CONFIG_DIR, TOPOLOGY_FILE
from edream.topology import TopologyError, load_topology

NOW = 1_717_416_000_000  # 2024-06-03T12:00:00Z


def _spotlink(**kw: Any) -> HttpDevice:
    return HttpDevice.model_validate(
        {
            "id": "evse-24",
            "protocol": "http",
            "base_url": "http://127.0.0.1:1/public/api",
            "resources": [
                {
                    "path": "chargeboxes/",
                    "fields": [{"path": "0.maxPwrAC", "quantity": "CURRENT", "unit": "A"}],
                }
            ],
            **kw,
        }
    )


def _modbus(**kw: Any) -> ModbusDevice:
    return ModbusDevice.model_validate(
        {
            "id": "wallbox-1",
            "protocol": "modbus",
            "host": "127.0.0.1",
            "registers": [{"address": 0, "type": "uint16", "quantity": "CURRENT", "unit": "A"}],
            **kw,
        }
    )


CHARGER = _spotlink(controls={"api": "spotlink", "chargeboxes": {"24": "37"}})


def _cmd(action: str = "SET_CURRENT_A", value: float | None = 16.0, **kw: Any) -> Command:
    rec = command_record(
        kw.pop("device_id", "evse-24"),
        kw.pop("target_id", "24"),
        DeviceAction(action),
        value,
        kw.pop("valid_from", NOW),
        kw.pop("valid_until", NOW + 60_000),
        "flex",
        NOW - 1000,
    )
    return Command.from_record(rec | kw)


def test_spotlink_setpoint_start_stop_become_steps() -> None:
    assert plan_command(_cmd(value=16.0), CHARGER, NOW) == Step(DeviceAction.SET_CURRENT_A, "24", 16)
    assert plan_command(_cmd(value=7), CHARGER, NOW) == Step(DeviceAction.SET_CURRENT_A, "24", 7)
    assert plan_command(_cmd(value=64), CHARGER, NOW) == Step(DeviceAction.SET_CURRENT_A, "24", 64)
    assert plan_command(_cmd("START", None), CHARGER, NOW) == Step(DeviceAction.START, "24")
    assert plan_command(_cmd("STOP", None), CHARGER, NOW) == Step(DeviceAction.STOP, "24")
    # the flex desk's set-point 0 means stop charging
    assert plan_command(_cmd(value=0.0), CHARGER, NOW) == Step(DeviceAction.STOP, "24")
    # a command received before valid_from is still planned (the service holds it until then)
    assert isinstance(plan_command(_cmd(valid_from=NOW + 5000), CHARGER, NOW), Step)


@pytest.mark.parametrize("value", [6.0, 65.0, 16.5, -7.0, None, float("nan"), float("inf")])
def test_out_of_range_or_non_integer_setpoints_are_invalid(value: float | None) -> None:
    v = plan_command(_cmd(value=value), CHARGER, NOW)
    assert isinstance(v, Verdict) and v.status is CommandStatus.INVALID


def test_setpoint_amps() -> None:
    assert [setpoint_amps(v) for v in (0.0, 7.0, 32.0, 64.0)] == [0, 7, 32, 64]
    for bad in (1.0, 6.0, 65.0, 7.5):
        with pytest.raises(ValueError):
            setpoint_amps(bad)


def test_stale_and_bad_window() -> None:
    late = plan_command(_cmd(valid_until=NOW - 1), CHARGER, NOW)
    assert late == Verdict(CommandStatus.EXPIRED, "received 1 ms after valid_until")
    at_end = plan_command(_cmd(valid_until=NOW), CHARGER, NOW)
    assert isinstance(at_end, Verdict) and at_end.status is CommandStatus.EXPIRED
    # expired wins over an invalid value: a stale command is never looked at further
    assert plan_command(_cmd(value=99, valid_until=NOW - 1), CHARGER, NOW).status is CommandStatus.EXPIRED  # type: ignore[union-attr]
    inverted = plan_command(_cmd(valid_from=NOW + 2000, valid_until=NOW + 1000), CHARGER, NOW)
    assert isinstance(inverted, Verdict) and inverted.status is CommandStatus.INVALID


def test_devices_without_the_control_are_unsupported() -> None:
    plain_http = _spotlink()
    mqtt = MqttDevice.model_validate({"id": "smx-1", "protocol": "mqtt", "topic": "a/b", "format": "smx"})
    for dev in (plain_http, mqtt, _modbus()):
        v = plan_command(_cmd(device_id=dev.id), dev, NOW)
        assert isinstance(v, Verdict) and v.status is CommandStatus.UNSUPPORTED, dev.id
    unknown_box = plan_command(_cmd(target_id="99"), CHARGER, NOW)
    assert isinstance(unknown_box, Verdict) and unknown_box.status is CommandStatus.UNSUPPORTED
    assert "chargebox '99'" in unknown_box.detail


def test_modbus_controls_decide_what_is_supported() -> None:
    only_current = _modbus(controls={"SET_CURRENT_A": {"address": 100}})
    assert plan_command(_cmd(), only_current, NOW) == Step(DeviceAction.SET_CURRENT_A, "24", 16)
    stop_as_zero = plan_command(_cmd(value=0.0), only_current, NOW)
    assert isinstance(stop_as_zero, Verdict) and stop_as_zero.status is CommandStatus.UNSUPPORTED
    assert "0 A = STOP" in stop_as_zero.detail
    with_stop = _modbus(controls={"SET_CURRENT_A": {"address": 100}, "STOP": {"address": 101, "value": 0}})
    assert plan_command(_cmd(value=0.0), with_stop, NOW) == Step(DeviceAction.STOP, "24")
    start = plan_command(_cmd("START", None), with_stop, NOW)
    assert isinstance(start, Verdict) and start.status is CommandStatus.UNSUPPORTED


def test_modbus_control_config_validation(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(
        yaml.safe_dump(
            {
                "devices": [
                    {
                        "id": "wb",
                        "protocol": "modbus",
                        "host": "h",
                        "registers": [{"address": 0, "type": "uint16", "quantity": "CURRENT", "unit": "A"}],
                        "controls": {"START": {"address": 5}},
                    }
                ]
            }
        )
    )
    with pytest.raises(
        ConfigError, match=r"d.yaml: device 'wb': field '\(device\)'.*START: needs the 'value'"
    ):
        load_config(tmp_path)
    with pytest.raises(ValueError, match="value comes from the command"):
        _modbus(controls={"SET_CURRENT_A": {"address": 1, "value": 16}})
    with pytest.raises(ValueError, match="scale must not be 0"):
        _modbus(controls={"SET_CURRENT_A": {"address": 1, "scale": 0}})
    with pytest.raises(ValueError, match="SET_POWER"):
        _modbus(controls={"SET_POWER": {"address": 1}})
    with pytest.raises(ValueError, match="chargeboxes"):
        _spotlink(controls={"api": "spotlink", "chargeboxes": {}})


def test_register_values_apply_scale_and_type() -> None:
    deci = _modbus(controls={"SET_CURRENT_A": {"address": 1, "scale": 0.1}}).controls[
        DeviceAction.SET_CURRENT_A
    ]
    assert register_values(deci, 16.0) == [160]
    f32 = _modbus(controls={"SET_CURRENT_A": {"address": 1, "type": "float32"}}).controls[
        DeviceAction.SET_CURRENT_A
    ]
    regs = register_values(f32, 32.0)
    assert len(regs) == 2 and decode(regs, DataType.FLOAT32) == 32.0
    tiny = _modbus(controls={"SET_CURRENT_A": {"address": 1, "scale": 0.0001}}).controls[
        DeviceAction.SET_CURRENT_A
    ]
    with pytest.raises(Refused, match="does not fit"):
        register_values(tiny, 64.0)  # 640000 > uint16


def test_retry_only_while_it_fits_before_valid_until() -> None:
    assert retry_allowed(NOW, 1.0, NOW + 1001)
    assert not retry_allowed(NOW, 1.0, NOW + 1000)
    assert not retry_allowed(NOW, 0.0, NOW)


def test_result_record_matches_contract() -> None:
    import io

    import fastavro

    cmd = _cmd()
    rec = result_record(cmd, CommandStatus.EXECUTED, "SET_OK", 2, NOW + 5)
    assert rec == {
        "command_id": "flex/evse-24/24/SET_CURRENT_A/1717416000000",
        "device_id": "evse-24",
        "target_id": "24",
        "status": "EXECUTED",
        "detail": "SET_OK",
        "attempts": 2,
        "executed_at": NOW + 5,
    }
    fastavro.schemaless_writer(io.BytesIO(), load_schema("DeviceCommandResult"), rec)
    fastavro.schemaless_writer(io.BytesIO(), load_schema("DeviceCommand"), command_record(
        "d", "t", DeviceAction.STOP, None, NOW, NOW + 1, "cli", NOW
    ))  # fmt: skip


def test_seen_commands_detects_duplicates_within_its_bound() -> None:
    seen = SeenCommands(max_size=2)
    assert seen.add("a") and seen.add("b")
    assert not seen.add("a")  # duplicate; also refreshes "a"
    assert seen.add("c")  # evicts "b", the least recently seen
    assert "a" in seen and "b" not in seen and len(seen) == 2
    assert seen.add("b")


def test_offset_tracker_commits_only_contiguous_done_offsets() -> None:
    t = OffsetTracker()
    p0, p1 = ("cmds", 0), ("cmds", 1)
    for off in (10, 11, 12):
        t.take(p0, off)
    t.take(p1, 3)
    assert t.committable() == {} and t.in_progress == 4
    t.done(p0, 11)  # finished before 10: nothing to commit on p0 yet
    t.done(p1, 3)
    assert t.committable() == {p1: 4}
    t.done(p0, 10)
    assert t.committable() == {p0: 12}
    assert t.committable() == {}  # no advance, nothing to commit again
    t.done(p0, 12)
    t.take(p0, 13)
    assert t.committable({p1}) == {}
    assert t.committable({p0}) == {p0: 13} and t.in_progress == 1
    t.forget({p0})
    t.done(p0, 13)  # a late completion on a revoked partition is ignored
    assert t.committable() == {} and t.in_progress == 0


def test_committed_connector_config_matches_topology() -> None:
    """The connector process reads its topics from its config directory; topology.yaml documents them."""
    topo = load_topology(TOPOLOGY_FILE)
    (entry,) = [c for c in topo.connectors if c.name == "connector-1"]
    cfg = load_config(CONNECTOR_CONFIG_DIR)
    c = cfg.connector
    assert (c.id, c.topic, c.commands, c.command_results) == (
        entry.name,
        entry.output,
        entry.commands,
        entry.command_results,
    )
    assert c.deadletter in topo.topic_names


def _topology_with(tmp_path: Path, **connector: Any) -> Path:
    data = yaml.safe_load(TOPOLOGY_FILE.read_text())
    data["connectors"][0].update(connector)
    (tmp_path / "avro").symlink_to(TOPOLOGY_FILE.parent / "avro")
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"commands": "nope.v1"},
            "connectors[connector-1].commands: topic 'nope.v1' is not declared under topics",
        ),
        (
            {"command_results": "device.commands.v1"},
            "connectors[connector-1].command_results: topic 'device.commands.v1' carries DeviceCommand, "
            "not DeviceCommandResult",
        ),
        (
            {"command_results": None},
            "connectors[connector-1].command_results: commands and command_results go",
        ),
    ],
)
def test_topology_checks_connector_command_topics(tmp_path: Path, change: dict, message: str) -> None:
    path = _topology_with(tmp_path, **change)
    with pytest.raises(TopologyError) as err:
        load_topology(path)
    assert message in str(err.value)
    assert err.value.line is not None and str(path) in str(err.value)
    text = path.read_text().splitlines()
    assert "connector-1" in text[err.value.line - 1] or any(
        k in text[err.value.line - 1] for k in ("commands", "command_results")
    )
