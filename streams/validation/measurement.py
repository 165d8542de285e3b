"""The ``Measurement`` contract (avro/Measurement.avsc, ``meter.readings.raw.v1``): required fields, ids, units,
finite values within the quantity's range, event time within bounds of the wall clock.

:func:`check_measurement` returns every :class:`~streams.validation.fields.FieldError` of a decoded record (empty
= valid); :func:`validate_measurement` gives the first one as a :class:`Verdict` (the code becomes the dead
letter's ``error_type``). Callers (the interval stage, the flex stage, the sink) route failures to
``platform.deadletter.v1`` with :func:`streams.deadletter.dead_letter`, which keeps the original bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from streams.validation.fields import MAX_EVENT_ID_LENGTH, Checker, FieldError
from streams.validation.limits import Limits, current_limits

#: UTC epoch ms of 2000-01-01; anything older is a device clock fault.
MIN_TS_MS = 946_684_800_000

REQUIRED_FIELDS: tuple[str, ...] = (
    "event_id",
    "device_id",
    "quantity",
    "unit",
    "connector_id",
    "ts",
    "seq",
    "ingest_ts",
)
#: Quantities whose |value| is a power and bounded by ``Limits.max_reading_kw`` (their unit is W/var/VA).
POWER_QUANTITIES = ("P_ACTIVE", "Q_REACTIVE", "S_APPARENT", "P_PRODUCTION", "EV_CHARGE_POWER")
#: Units a quantity without its own rule (``OTHER``) may carry.
KNOWN_UNITS = frozenset(
    {"W", "var", "VA", "Wh", "varh", "VAh", "V", "A", "Hz", "1", "%", "degC", "W/m2", "s", "m3", "kg", "Pa"}
)
#: |value| bound of a quantity without its own rule.
OTHER_MAX_ABS = 1e15


def quantity_rules(max_power_w: float) -> dict[str, tuple[str, float, float]]:
    """Expected SI unit and plausible closed value range per quantity. Powers in W/var/VA (|value| <=
    ``max_power_w``), cumulative registers in Wh/varh/VAh."""
    p = max_power_w
    return {
        "P_ACTIVE": ("W", -p, p),
        "Q_REACTIVE": ("var", -p, p),
        "S_APPARENT": ("VA", 0.0, p),
        "E_IMPORT": ("Wh", 0.0, 1e15),
        "E_EXPORT": ("Wh", 0.0, 1e15),
        "E_REACTIVE_IMPORT": ("varh", 0.0, 1e15),
        "E_REACTIVE_EXPORT": ("varh", 0.0, 1e15),
        "E_APPARENT": ("VAh", 0.0, 1e15),
        "VOLTAGE_LN": ("V", 0.0, 1e6),
        "VOLTAGE_LL": ("V", 0.0, 1e6),
        "CURRENT": ("A", -1e5, 1e5),
        "FREQUENCY": ("Hz", 40.0, 70.0),
        "POWER_FACTOR": ("1", -1.0, 1.0),
        "SOC": ("%", 0.0, 100.0),
        "TEMPERATURE": ("degC", -80.0, 200.0),
        "IRRADIANCE": ("W/m2", 0.0, 2000.0),
        "P_PRODUCTION": ("W", 0.0, p),
        "E_PRODUCTION": ("Wh", 0.0, 1e15),
        "EV_CHARGE_POWER": ("W", 0.0, min(p, 1e6)),
    }


KNOWN_QUANTITIES = frozenset(quantity_rules(1.0)) | {"OTHER"}
PHASES = frozenset({"TOTAL", "L1", "L2", "L3", "L12", "L23", "L31", "N"})


@dataclass(frozen=True)
class ValidationConfig:
    """Limits of a reading. ``max_future_ms``/``max_past_ms``: how far ``ts`` may be ahead of / behind ``now_ms``
    (``max_past_ms`` None = only ``min_ts_ms``)."""

    max_future_ms: int = 5 * 60_000
    max_past_ms: int | None = None
    min_ts_ms: int = MIN_TS_MS
    accept_bad_quality: bool = False
    rules: Mapping[str, tuple[str, float, float]] = field(default_factory=lambda: quantity_rules(1e7))

    @classmethod
    def from_limits(cls, limits: Limits) -> ValidationConfig:
        return cls(
            max_future_ms=limits.max_future_ms,
            max_past_ms=limits.max_past_ms,
            rules=quantity_rules(limits.max_reading_kw * 1000.0),
        )


@lru_cache(maxsize=1)
def default_config() -> ValidationConfig:
    """The reading limits of this process's settings."""
    return ValidationConfig.from_limits(current_limits())


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of validating one record: ``ok`` or an error ``code`` (machine) and ``reason`` (human)."""

    ok: bool
    code: str = ""
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


OK = Verdict(True)


def check_measurement(
    rec: Mapping[str, Any], now_ms: int | None = None, cfg: ValidationConfig | None = None
) -> list[FieldError]:
    """Every problem of one decoded Measurement (empty = valid). ``now_ms`` (UTC epoch ms, the wall clock)
    enables the bounds of ``ts`` relative to now."""
    cfg = cfg or default_config()
    c = Checker()
    missing = [n for n in REQUIRED_FIELDS if rec.get(n) is None or rec.get(n) == ""]
    for name in missing:
        c.fail(name, "missing_field", f"required field {name!r} is missing or empty")
    if missing:
        return c.errors
    ts = rec["ts"]
    if not isinstance(ts, int) or isinstance(ts, bool):
        c.fail("ts", "bad_type", f"ts must be an int (UTC epoch ms), got {type(ts).__name__}")
    elif ts < cfg.min_ts_ms:
        c.fail("ts", "ts_out_of_range", f"ts {ts} is before {cfg.min_ts_ms} (device clock not set?)")
    elif now_ms is not None:
        c.event_time("ts", ts, now_ms, cfg.max_past_ms or now_ms - cfg.min_ts_ms, cfg.max_future_ms)
    for name in ("ingest_ts", "seq"):
        if not isinstance(rec[name], int) or isinstance(rec[name], bool):
            c.fail(name, "bad_type", f"{name} must be an int, got {type(rec[name]).__name__}")
    c.identifier("event_id", rec["event_id"], max_len=MAX_EVENT_ID_LENGTH)
    c.identifier("device_id", rec["device_id"])
    c.identifier("connector_id", rec["connector_id"])
    c.identifier("prosumer_id", rec.get("prosumer_id"), required=False)
    c.identifier("site_id", rec.get("site_id"), required=False)
    if rec.get("obis_code") is not None:
        c.text("obis_code", rec["obis_code"], max_len=32)
    c.one_of("phase", rec.get("phase") or "TOTAL", PHASES)
    if rec.get("quality", "GOOD") == "BAD" and not cfg.accept_bad_quality:
        c.fail("quality", "bad_quality", "device reported quality BAD")
    value = rec.get("value")
    if value is None:
        c.fail("value", "null_value", "value is null")
    quantity, unit = rec["quantity"], rec["unit"]
    rule = cfg.rules.get(quantity)
    if rule is not None:
        want, lo, hi = rule
        if unit != want:
            c.fail("unit", "unit_mismatch", f"{quantity} must be in {want}, got {str(unit)[:40]!r}")
    elif quantity not in KNOWN_QUANTITIES:
        c.fail("quantity", "unknown_value", f"unknown quantity {str(quantity)[:40]!r}")
    else:
        lo, hi = -OTHER_MAX_ABS, OTHER_MAX_ABS
        c.one_of("unit", unit, KNOWN_UNITS)
    if value is not None and (rule is not None or quantity in KNOWN_QUANTITIES):
        c.number("value", value, lo, hi, unit=rule[0] if rule else "")
    return c.errors


def validate_measurement(
    rec: Mapping[str, Any], now_ms: int | None = None, cfg: ValidationConfig | None = None
) -> Verdict:
    """The first problem of :func:`check_measurement` as a :class:`Verdict` (OK when there is none)."""
    errors = check_measurement(rec, now_ms, cfg)
    if not errors:
        return OK
    first = errors[0]
    return Verdict(False, first.code, first.reason if first.reason.startswith(first.field) else str(first))
