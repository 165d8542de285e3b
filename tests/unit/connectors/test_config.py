"""Config loading: profiles, overrides, and errors naming file, device and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.config import ConfigError, ModbusDevice, load_config, validate_topic_filter
from connectors.modbus_codec import DataType
from connectors.models import Quantity
from edream.paths import CONNECTOR_CONFIG_DIR

PROFILE = """
profiles:
  meter:
    protocol: modbus
    port: 1502
    registers:
      - {address: 0, type: float32, quantity: P_ACTIVE, unit: kW}
      - {address: 2, type: uint16, scale: 0.1, quantity: VOLTAGE_LN, phase: L1, unit: V}
"""


def _write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_shipped_configs_are_valid() -> None:
    cfg = load_config(CONNECTOR_CONFIG_DIR, include_disabled=True)
    assert {d.protocol for d in cfg.devices} == {"modbus", "mqtt", "opcua", "http"}


def test_profile_is_reused_and_device_keys_override(tmp_path: Path) -> None:
    _write(tmp_path, "profiles.yaml", PROFILE)
    _write(
        tmp_path,
        "site.yaml",
        "devices:\n"
        + "".join(f"  - {{id: m{i}, profile: meter, host: 10.0.0.{i}}}\n" for i in range(50))
        + "  - {id: special, profile: meter, host: h, port: 502, enabled: false}\n",
    )
    cfg = load_config(tmp_path)
    assert len(cfg.devices) == 50
    d0 = cfg.devices[0]
    assert isinstance(d0, ModbusDevice) and d0.port == 1502 and d0.poll_interval_s == 5.0
    assert d0.registers[0].type is DataType.FLOAT32 and d0.registers[1].quantity is Quantity.VOLTAGE_LN
    special = load_config(tmp_path, include_disabled=True).devices[-1]
    assert special.port == 502


@pytest.mark.parametrize(
    ("device", "field", "fragment"),
    [
        (
            "{id: m1, profile: meter, host: h, registers: [{address: 0, type: float33, quantity: P_ACTIVE, unit: W}]}",
            "registers[0].type",
            "float32",
        ),
        (
            "{id: m1, profile: meter, host: h, registers: [{type: int16, quantity: P_ACTIVE, unit: W}]}",
            "registers[0].address",
            "required",
        ),
        ("{id: m1, protocol: mqtt, topic: 'a/#/b', format: smx}", "topic", "'#' must be the last level"),
        ("{id: m1, protocol: mqtt, topic: 'a/b+/c', format: smx}", "topic", "whole level"),
        (
            "{id: m1, protocol: modbus, host: h, registers: [{address: 1, type: int16, quantity: POWER, unit: W}]}",
            "registers[0].quantity",
            "P_ACTIVE",
        ),
        (
            "{id: m1, profile: meter, host: h, registers: [{address: 1, type: int16, quantity: SOC, unit: pct}]}",
            "registers[0].unit",
            "unknown unit",
        ),
        ("{id: m1, profile: meter, host: h, hots: x}", "hots", "Extra inputs"),
        ("{id: m1, protocol: zigbee}", "protocol", "zigbee"),
        ("{id: m1, profile: metre, host: h}", "profile", "unknown profile 'metre'"),
        (
            "{id: m1, protocol: opcua, endpoint: 'http://x', nodes: [{node_id: a, quantity: SOC, unit: '%'}]}",
            "endpoint",
            "opc.tcp",
        ),
        ("{id: m1, protocol: mqtt, topic: a/b, format: json}", "(device)", "fields"),
    ],
)
def test_typos_name_file_device_and_field(tmp_path: Path, device: str, field: str, fragment: str) -> None:
    _write(tmp_path, "profiles.yaml", PROFILE)
    site = _write(tmp_path, "site.yaml", f"devices:\n  - {device}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(tmp_path)
    msg = str(ei.value)
    assert str(site) in msg and "device 'm1'" in msg and f"field '{field}'" in msg and fragment in msg, msg


def test_profile_typo_names_profile_file(tmp_path: Path) -> None:
    prof = _write(tmp_path, "profiles.yaml", PROFILE.replace("type: float32", "type: flaot32"))
    _write(tmp_path, "site.yaml", "devices:\n  - {id: m7, profile: meter, host: h}\n")
    with pytest.raises(
        ConfigError, match=r"device 'm7' \(profile 'meter' from .*profiles.yaml\).*registers\[0\]"
    ):
        load_config(tmp_path)
    assert prof.exists()


def test_duplicates_and_structure(tmp_path: Path) -> None:
    _write(tmp_path, "profiles.yaml", PROFILE)
    _write(tmp_path, "a.yaml", "devices:\n  - {id: m1, profile: meter, host: h}\n")
    _write(tmp_path, "b.yaml", "devices:\n  - {id: m1, profile: meter, host: h}\n")
    with pytest.raises(ConfigError, match=r"b.yaml: device 'm1': field 'id': duplicate, also in .*a.yaml"):
        load_config(tmp_path)
    (tmp_path / "b.yaml").write_text("device:\n  - {id: m2}\n")
    with pytest.raises(ConfigError, match=r"b.yaml: unknown top-level key"):
        load_config(tmp_path)
    (tmp_path / "b.yaml").write_text("devices: [\n")
    with pytest.raises(ConfigError, match=r"b.yaml: not valid YAML"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope")


@pytest.mark.parametrize("topic", ["a/b", "+/SMX/", "a/#", "#", "+", "a/+/c"])
def test_valid_topics(topic: str) -> None:
    assert validate_topic_filter(topic) == topic
