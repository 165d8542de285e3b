"""Typed readings and their conversion to the Avro ``Measurement`` record (avro/Measurement.avsc).

A :class:`Reading` is what a protocol client produces: one value of one quantity of one device, before the
runtime stamps connector id, sequence number and ingest time. Units follow the contract: power in W, energy in
Wh, reactive power in var, apparent power in VA, voltage V, current A, frequency Hz, SOC %, time UTC epoch ms.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Any, NamedTuple

MEASUREMENT_TOPIC = "meter.readings.raw.v1"
COMMANDS_TOPIC = "device.commands.v1"
COMMAND_RESULTS_TOPIC = "device.command.results.v1"


class Quantity(StrEnum):
    P_ACTIVE = "P_ACTIVE"
    Q_REACTIVE = "Q_REACTIVE"
    S_APPARENT = "S_APPARENT"
    E_IMPORT = "E_IMPORT"
    E_EXPORT = "E_EXPORT"
    E_REACTIVE_IMPORT = "E_REACTIVE_IMPORT"
    E_REACTIVE_EXPORT = "E_REACTIVE_EXPORT"
    E_APPARENT = "E_APPARENT"
    VOLTAGE_LN = "VOLTAGE_LN"
    VOLTAGE_LL = "VOLTAGE_LL"
    CURRENT = "CURRENT"
    FREQUENCY = "FREQUENCY"
    POWER_FACTOR = "POWER_FACTOR"
    SOC = "SOC"
    TEMPERATURE = "TEMPERATURE"
    IRRADIANCE = "IRRADIANCE"
    P_PRODUCTION = "P_PRODUCTION"
    E_PRODUCTION = "E_PRODUCTION"
    EV_CHARGE_POWER = "EV_CHARGE_POWER"
    OTHER = "OTHER"


class Phase(StrEnum):
    TOTAL = "TOTAL"
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"
    L12 = "L12"
    L23 = "L23"
    L31 = "L31"
    N = "N"


class Quality(StrEnum):
    GOOD = "GOOD"
    SUSPECT = "SUSPECT"
    BAD = "BAD"
    ESTIMATED = "ESTIMATED"


class SourceProtocol(StrEnum):
    MQTT = "MQTT"
    MODBUS = "MODBUS"
    OPCUA = "OPCUA"
    HTTP = "HTTP"
    SIMULATOR = "SIMULATOR"
    FILE = "FILE"


class TsSource(StrEnum):
    DEVICE = "DEVICE"
    POLL = "POLL"


class DeviceAction(StrEnum):
    """Control actions of the ``DeviceCommand`` contract (avro/DeviceCommand.avsc)."""

    SET_CURRENT_A = "SET_CURRENT_A"  # EV charging current set-point, A per phase, integer 7..64
    START = "START"
    STOP = "STOP"


UNITS = frozenset({"W", "Wh", "var", "varh", "VA", "VAh", "V", "A", "Hz", "%", "degC", "W/m2", "1"})


def now_ms() -> int:
    """Current wall-clock time, UTC epoch ms."""
    return time.time_ns() // 1_000_000


class Reading(NamedTuple):
    """One value of one quantity of one device at event time ``ts`` (UTC epoch ms).

    ``value`` is in ``unit`` (a contract SI unit, see :data:`UNITS`); ``None`` means the device reported n/a or
    the raw value could not be parsed, and then ``quality`` is BAD. Immutable; a NamedTuple rather than a frozen
    dataclass because one is built per point on the hot path (1.2 µs instead of 2.5 µs).
    """

    device_id: str
    quantity: Quantity
    value: float | None
    unit: str
    ts: int
    ts_source: TsSource
    source_protocol: SourceProtocol
    phase: Phase = Phase.TOTAL
    quality: Quality = Quality.GOOD
    obis_code: str | None = None
    prosumer_id: str | None = None
    site_id: str | None = None


def event_id(connector_id: str, r: Reading) -> str:
    """Deterministic idempotency key ``connector_id/device_id/quantity/phase/ts`` (contract doc)."""
    return f"{connector_id}/{r.device_id}/{r.quantity}/{r.phase}/{r.ts}"


def to_measurement(r: Reading, connector_id: str, seq: int, ingest_ts: int | None = None) -> dict[str, Any]:
    """The Avro ``Measurement`` record for a reading (a plain dict ready for ``Serde.encode``)."""
    return {
        "event_id": event_id(connector_id, r),
        "device_id": r.device_id,
        "prosumer_id": r.prosumer_id,
        "site_id": r.site_id,
        "quantity": r.quantity,  # StrEnum members are str: no .value lookups on the hot path
        "phase": r.phase,
        "value": r.value,
        "unit": r.unit,
        "obis_code": r.obis_code,
        "quality": r.quality,
        "source_protocol": r.source_protocol,
        "connector_id": connector_id,
        "ts": r.ts,
        "ts_source": r.ts_source,
        "seq": seq,
        "ingest_ts": now_ms() if ingest_ts is None else ingest_ts,
    }
