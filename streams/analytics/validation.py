"""Ingest validation of Measurement records (avro/Measurement.avsc): required fields, units, ranges, duplicates.

Pure functions: :func:`validate_measurement` returns a :class:`Verdict` (ok, or the error code and a human
reason); :class:`DuplicateFilter` drops exact duplicates by ``(device_id, quantity, phase, ts)``. Callers route
failures to ``platform.deadletter.v1`` with :func:`streams.deadletter.dead_letter` (which keeps the original bytes).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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

#: Expected SI unit and plausible closed value range per quantity. P_* in W, E_* cumulative registers in Wh.
QUANTITY_RULES: dict[str, tuple[str, float, float]] = {
    "P_ACTIVE": ("W", -1e8, 1e8),
    "Q_REACTIVE": ("var", -1e8, 1e8),
    "S_APPARENT": ("VA", 0.0, 1e8),
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
    "P_PRODUCTION": ("W", 0.0, 1e8),
    "E_PRODUCTION": ("Wh", 0.0, 1e15),
    "EV_CHARGE_POWER": ("W", 0.0, 1e7),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Outcome of validating one record: ``ok`` or an error ``code`` (machine) and ``reason`` (human)."""

    ok: bool
    code: str = ""
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


OK = Verdict(True)


def _err(code: str, reason: str) -> Verdict:
    return Verdict(False, code, reason)


@dataclass(frozen=True)
class ValidationConfig:
    """Limits. ``max_future_ms``: how far ahead of ``now_ms`` an event time may be (clock skew allowance)."""

    max_future_ms: int = 5 * 60_000
    min_ts_ms: int = MIN_TS_MS
    accept_bad_quality: bool = False
    rules: Mapping[str, tuple[str, float, float]] = field(default_factory=lambda: QUANTITY_RULES)


DEFAULT_CONFIG = ValidationConfig()


def validate_measurement(
    rec: Mapping[str, Any], now_ms: int | None = None, cfg: ValidationConfig = DEFAULT_CONFIG
) -> Verdict:
    """Check one decoded Measurement. ``now_ms`` (UTC epoch ms) enables the future-timestamp check."""
    for name in REQUIRED_FIELDS:
        v = rec.get(name)
        if v is None or v == "":
            return _err("missing_field", f"required field {name!r} is missing or empty")
    ts = rec["ts"]
    if not isinstance(ts, int) or isinstance(ts, bool):
        return _err("bad_type", f"ts must be an int (UTC epoch ms), got {type(ts).__name__}")
    if ts < cfg.min_ts_ms:
        return _err("ts_out_of_range", f"ts {ts} is before {cfg.min_ts_ms} (device clock not set?)")
    if now_ms is not None and ts > now_ms + cfg.max_future_ms:
        return _err("ts_in_future", f"ts {ts} is {ts - now_ms} ms ahead of now")
    quality = rec.get("quality", "GOOD")
    if quality == "BAD" and not cfg.accept_bad_quality:
        return _err("bad_quality", "device reported quality BAD")
    value = rec.get("value")
    if value is None:
        return _err("null_value", "value is null")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _err("bad_type", f"value must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        return _err("value_not_finite", f"value {value!r} is not finite")
    rule = cfg.rules.get(rec["quantity"])
    if rule is not None:
        unit, lo, hi = rule
        if rec["unit"] != unit:
            return _err("unit_mismatch", f"{rec['quantity']} must be in {unit}, got {rec['unit']!r}")
        if not lo <= value <= hi:
            return _err("value_out_of_range", f"{rec['quantity']} value {value} outside [{lo}, {hi}] {unit}")
    return OK


DedupKey = tuple[str, str, str, int]


def dedup_key(rec: Mapping[str, Any]) -> DedupKey:
    """Identity of a reading: (device_id, quantity, phase, ts)."""
    return (rec["device_id"], rec["quantity"], rec.get("phase") or "TOTAL", rec["ts"])


class DuplicateFilter:
    """Remembers the last ``capacity`` reading keys (LRU) and reports exact repeats.

    Bounded memory; a duplicate older than the capacity window passes and must be absorbed downstream by the
    idempotent interval aggregation (same ts replaces, never adds).
    """

    def __init__(self, capacity: int = 1_000_000):
        self.capacity = capacity
        self._seen: OrderedDict[DedupKey, None] = OrderedDict()

    def seen(self, rec: Mapping[str, Any]) -> bool:
        """True when this key was seen before (a duplicate); otherwise remember it and return False."""
        key = dedup_key(rec)
        if key in self._seen:
            self._seen.move_to_end(key)
            return True
        self._seen[key] = None
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._seen)
