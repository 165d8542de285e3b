"""Device configuration: YAML files under ``connectors/config/`` validated with pydantic.

A file may hold ``profiles`` (reusable partial device configs: a register map, node map or payload map written
once), ``devices`` (each may name a ``profile``; its own keys override the profile's) and at most one directory
may hold a ``connector`` section (connector id, topic, buffer bound). Every error names the file, the device
and the field, e.g. ``site.yaml: device 'kiwi-7': field 'registers[2].type': Input should be 'int16', ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.modbus_codec import WORDS, DataType, Function, Order
from connectors.models import (
    COMMAND_RESULTS_TOPIC,
    MEASUREMENT_TOPIC,
    DeviceAction,
    Phase,
    Quantity,
)
from connectors.values import UnknownUnit, normalise_unit
from streams.deadletter import DEADLETTER_TOPIC


class ConfigError(ValueError):
    """Invalid connector configuration; the message names file, device and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointBase(_Strict):
    """Common mapping of one raw value to a contract quantity. ``unit`` is the device's unit (``kWh`` is fine:
    it is normalised to the contract unit with its factor); ``scale``/``offset`` apply before that;
    ``min``/``max`` (in the contract unit) bound plausible values, outside = quality BAD."""

    quantity: Quantity
    unit: str
    phase: Phase = Phase.TOTAL
    scale: float = 1.0
    offset: float = 0.0
    obis_code: str | None = None
    min: float | None = None
    max: float | None = None

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, v: str) -> str:
        try:
            normalise_unit(v)
        except UnknownUnit as exc:
            raise ValueError(str(exc)) from None
        return v


class ModbusPoint(PointBase):
    address: int = Field(ge=0, le=65535)
    type: DataType
    function: Function = Function.HOLDING
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG
    name: str | None = None

    @property
    def count(self) -> int:
        return WORDS[self.type]


class OpcuaNode(PointBase):
    node_id: str = Field(min_length=1)


class JsonField(PointBase):
    """``path``: dotted path into the JSON payload (``data.power`` or ``recharges.0.kwTot``)."""

    path: str = Field(min_length=1)


class DeviceBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:\-]+$")
    prosumer_id: str | None = None
    site_id: str | None = None
    enabled: bool = True
    poll_interval_s: float = Field(
        5.0, gt=0, description="poll period; the spec's devices transmit every 5 s"
    )
    timeout_s: float = Field(3.0, gt=0)
    backoff_initial_s: float = Field(0.5, gt=0)
    backoff_max_s: float = Field(30.0, gt=0)
    profile: str | None = None


class ModbusControl(_Strict):
    """A writable holding register that executes one :class:`DeviceAction` (written with function code 6 for
    one register, 16 for more). The register receives ``value / scale`` encoded as ``type``: for
    ``SET_CURRENT_A`` ``value`` is the command's set-point in A, for ``START``/``STOP`` the fixed ``value``
    given here (e.g. ``STOP: {address: 100, value: 0}`` pauses a charger whose current register is 100)."""

    address: int = Field(ge=0, le=65535)
    type: DataType = DataType.UINT16
    scale: float = Field(1.0, description="engineering units per register count (A per count for currents)")
    value: float | None = None
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0:
            raise ValueError("scale must not be 0")
        return v


class ModbusDevice(DeviceBase):
    protocol: Literal["modbus"]
    host: str
    port: int = Field(502, ge=1, le=65535)
    unit_id: int = Field(1, ge=0, le=255)
    max_gap: int = Field(0, ge=0, le=100, description="registers a batched read may skip between points")
    registers: list[ModbusPoint] = Field(min_length=1)
    controls: dict[DeviceAction, ModbusControl] = Field(
        {}, description="actions the device executes from device.commands.v1 (none: commands UNSUPPORTED)"
    )

    @model_validator(mode="after")
    def _control_values(self) -> ModbusDevice:
        for action, ctl in self.controls.items():
            if action is DeviceAction.SET_CURRENT_A and ctl.value is not None:
                raise ValueError("controls.SET_CURRENT_A: the value comes from the command; remove 'value'")
            if action is not DeviceAction.SET_CURRENT_A and ctl.value is None:
                raise ValueError(f"controls.{action}: needs the 'value' to write")
        return self


class OpcuaSecurity(_Strict):
    policy: Literal["None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128Sha256RsaOaep"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = None
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _cert_needed(self) -> OpcuaSecurity:
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"security policy {self.policy} needs certificate and private_key")
        return self


class OpcuaDevice(DeviceBase):
    protocol: Literal["opcua"]
    endpoint: str

    @field_validator("endpoint")
    @classmethod
    def _opc_tcp(cls, v: str) -> str:
        if not v.startswith("opc.tcp://"):
            raise ValueError(f"endpoint {v!r} must start with opc.tcp://")
        return v

    publishing_interval_ms: int = Field(1000, ge=10)
    security: OpcuaSecurity = OpcuaSecurity()
    nodes: list[OpcuaNode] = Field(min_length=1)


TOPIC_SEGMENT_RE = re.compile(r"^[^+#\x00]*$")


def validate_topic_filter(topic: str) -> str:
    """MQTT topic filter rules: non-empty, ``+`` a whole level, ``#`` a whole and last level, no NUL."""
    if not topic:
        raise ValueError("empty topic")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if level in ("+",):
            continue
        if level == "#":
            if i != len(levels) - 1:
                raise ValueError(f"bad topic pattern {topic!r}: '#' must be the last level")
            continue
        if not TOPIC_SEGMENT_RE.match(level):
            raise ValueError(f"bad topic pattern {topic!r}: wildcards must occupy a whole level")
    return topic


class TimestampSpec(_Strict):
    """Where the device timestamp is in a JSON payload and how to read it. ``format``: ``epoch_ms``,
    ``epoch_s``, ``iso`` or a ``strptime`` pattern; naive times are in ``timezone`` (IANA name)."""

    path: str
    format: str = "epoch_ms"
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(v)
        except Exception:
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class MqttDevice(DeviceBase):
    protocol: Literal["mqtt"]
    broker_host: str = "127.0.0.1"
    broker_port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    topic: str
    qos: Literal[0, 1, 2] = 1
    format: Literal["smx", "json"] = "json"
    device_id_level: int | None = Field(
        None, ge=0, description="take the device id from this topic level (one config for a fleet)"
    )
    fields: list[JsonField] = []
    smx_names: list[str] | None = Field(None, description="SMX entries to keep (default: every mapped one)")
    timestamp: TimestampSpec | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        return validate_topic_filter(v)

    @model_validator(mode="after")
    def _fields_for_json(self) -> MqttDevice:
        if self.format == "json" and not self.fields:
            raise ValueError("format json needs at least one entry in fields")
        if self.device_id_level is not None and self.device_id_level >= len(self.topic.split("/")):
            raise ValueError(f"device_id_level {self.device_id_level} beyond the topic's levels")
        return self


class HttpResource(_Strict):
    """One GET per poll: ``path`` relative to the device's base_url (may embed a JSON object, as SpotLink)."""

    path: str
    fields: list[JsonField] = Field(min_length=1)
    timestamp: TimestampSpec | None = None


class SpotLinkControls(_Strict):
    """SpotLink/Emotion charger control through the device's ``base_url`` (setPower, startChargebox,
    stopChargebox; :class:`connectors.http_poll.EvChargerCommands`). ``chargeboxes`` maps each controllable
    chargeboxID (the command's ``target_id``) to the socketID that START/STOP address."""

    api: Literal["spotlink"] = "spotlink"
    chargeboxes: dict[str, str] = Field(min_length=1)


class HttpDevice(DeviceBase):
    protocol: Literal["http"]
    base_url: str
    controls: SpotLinkControls | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url {v!r} must start with http:// or https://")
        return v

    headers: dict[str, str] = {}
    resources: list[HttpResource] = Field(min_length=1)


DeviceConfig = Annotated[
    ModbusDevice | OpcuaDevice | MqttDevice | HttpDevice, Field(discriminator="protocol")
]
_DEVICE_ADAPTER: TypeAdapter[Any] = TypeAdapter(DeviceConfig)


class ConnectorSettings(_Strict):
    """``commands``: topic of DeviceCommands to execute for this directory's devices (unset: the connector
    only reads); results go to ``command_results``, undecodable commands to ``deadletter``."""

    id: str = "connector-1"
    topic: str = MEASUREMENT_TOPIC
    commands: str | None = None
    command_results: str = COMMAND_RESULTS_TOPIC
    deadletter: str = DEADLETTER_TOPIC
    command_concurrency: int = Field(
        1000, ge=1, description="commands in progress (waiting for valid_from or retrying) before pausing"
    )
    max_buffered: int = Field(100_000, ge=1, description="readings held while the broker is unreachable")
    metrics_port: int | None = Field(None, ge=0, le=65535)
    linger_ms: int = Field(20, ge=0)


@dataclass
class LoadedConfig:
    connector: ConnectorSettings
    devices: list[Any]  # DeviceConfig instances
    device_files: dict[str, Path] = field(default_factory=dict)
    profiles: dict[str, tuple[Path, dict[str, Any]]] = field(default_factory=dict)


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("modbus", "opcua", "mqtt", "http"):  # discriminator tag pydantic inserts
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(device)"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping with profiles/devices/connector")
    unknown = set(data) - {"profiles", "devices", "connector"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {sorted(unknown)} (expected profiles, devices, connector)"
        )
    return data


def validate_device(raw: dict[str, Any], path: Path, profiles: dict[str, tuple[Path, dict[str, Any]]]) -> Any:
    """Merge a device with its profile and validate it; raise ConfigError naming file, device and field."""
    dev_id = raw.get("id", "?")
    where = f"{path}: device '{dev_id}'"
    merged = dict(raw)
    prof_name = raw.get("profile")
    if prof_name is not None:
        if prof_name not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(f"{where}: field 'profile': unknown profile {prof_name!r} (known: {known})")
        prof_path, prof = profiles[prof_name]
        merged = {**prof, **raw}
        where += f" (profile '{prof_name}' from {prof_path})"
    try:
        return _DEVICE_ADAPTER.validate_python(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        extra = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        field_name = _loc(err["loc"])
        if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
            field_name = "protocol"
        raise ConfigError(f"{where}: field '{field_name}': {err['msg']}{extra}") from None


def config_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))


def load_config(directory: Path | str, include_disabled: bool = False) -> LoadedConfig:
    """Load and validate every ``*.yaml`` under ``directory`` (recursively, sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory}: config directory does not exist")
    files = [(p, _read_yaml(p)) for p in config_files(directory)]
    profiles: dict[str, tuple[Path, dict[str, Any]]] = {}
    connector: ConnectorSettings | None = None
    for path, data in files:
        for name, prof in (data.get("profiles") or {}).items():
            if not isinstance(prof, dict):
                raise ConfigError(f"{path}: profile '{name}': must be a mapping")
            if name in profiles:
                raise ConfigError(f"{path}: profile '{name}': already defined in {profiles[name][0]}")
            profiles[name] = (path, prof)
        if "connector" in data:
            if connector is not None:
                raise ConfigError(f"{path}: connector: defined in more than one file")
            try:
                connector = ConnectorSettings.model_validate(data["connector"] or {})
            except ValidationError as exc:
                err = exc.errors()[0]
                raise ConfigError(f"{path}: connector: field '{_loc(err['loc'])}': {err['msg']}") from None
    loaded = LoadedConfig(connector or ConnectorSettings(), [], profiles=profiles)
    for path, data in files:
        devices = data.get("devices") or []
        if not isinstance(devices, list):
            raise ConfigError(f"{path}: devices: must be a list")
        for i, raw in enumerate(devices):
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}: devices[{i}]: must be a mapping")
            dev = validate_device(raw, path, profiles)
            if dev.id in loaded.device_files:
                raise ConfigError(
                    f"{path}: device '{dev.id}': field 'id': duplicate, also in {loaded.device_files[dev.id]}"
                )
            loaded.device_files[dev.id] = path
            if dev.enabled or include_disabled:
                loaded.devices.append(dev)
    return loaded
