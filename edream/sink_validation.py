"""Pre-insert validation of sink rows against the ClickHouse column each value is written to.

One check per column, derived from the Avro field type exactly as :func:`edream.clickhouse.column_type` derives the
column: integer ranges (Int32/Int64), finite floats (no NaN or infinity; Float32 magnitude), DateTime64/Date32
ranges (ClickHouse stores 1900-01-01 .. 2299-12-31), enum symbols, string lengths, NULL only in Nullable columns,
and the Python type of every value. A row that fails any check is reported with the column and the reason, so the
sink can dead-letter that row and write the rest of its batch.

Checks run on the encoded columns (:meth:`edream.clickhouse.RowEncoder.columns_of`). Each column is first checked
as a whole with C-speed builtins (``set(map(type, ...))``, ``min``/``max``, ``math.fsum``); only a column that does
not pass as a whole is scanned value by value to find the offending rows.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from edream.avro_schemas import AvroContract
from edream.clickhouse import is_complex, stored_as_json

#: ClickHouse DateTime64 range, UTC epoch ms: [1900-01-01T00:00Z, 2300-01-01T00:00Z).
DATETIME64_MIN_MS = -2_208_988_800_000
DATETIME64_END_MS = 10_413_792_000_000
#: ClickHouse Date32 range, days since 1970-01-01: 1900-01-01 .. 2299-12-31.
DATE32_MIN_DAYS, DATE32_MAX_DAYS = -25_567, 120_529
#: Longest plain string value (characters) a sink writes unless the sink sets ``max_string_chars``/``string_limits``.
DEFAULT_MAX_STRING_CHARS = 4096
#: Longest bytes value or JSON-encoded nested value (bytes/characters): 8x Kafka's default 1 MiB message limit.
MAX_BLOB_CHARS = 8 * 2**20
_FLOAT32_MAX = 3.4028234663852886e38
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


class ValueCheck(Protocol):
    """What one column accepts."""

    def problem(self, value: Any) -> str | None:
        """Why ``value`` cannot be written to the column, or None if it can."""

    def all_ok(self, values: Sequence[Any]) -> bool:
        """Fast whole-column test; False means "scan value by value", not "some value is bad"."""


def _types_within(values: Sequence[Any], allowed: set[type]) -> bool:
    return set(map(type, values)) <= allowed


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class _Ints:
    lo: int
    hi: int

    def all_ok(self, values: Sequence[Any]) -> bool:
        return not values or (
            _types_within(values, {int}) and self.lo <= min(values) and max(values) <= self.hi
        )

    def problem(self, value: Any) -> str | None:
        if type(value) is not int:
            return f"expected an integer, got {_type_name(value)}"
        if not self.lo <= value <= self.hi:
            return f"{value} outside [{self.lo}, {self.hi}]"
        return None


@dataclass(frozen=True)
class _Floats:
    max_abs: float | None = None  # None: any finite float64

    def all_ok(self, values: Sequence[Any]) -> bool:
        if not values or not _types_within(values, {float, int}):
            return not values
        try:
            if not math.isfinite(math.fsum(values)):
                return False
        except (OverflowError, ValueError):  # overflowing sum, huge int, or inf + -inf
            return False
        return self.max_abs is None or (-self.max_abs <= min(values) and max(values) <= self.max_abs)

    def problem(self, value: Any) -> str | None:
        if type(value) not in (float, int):
            return f"expected a number, got {_type_name(value)}"
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond float64
            return f"{str(value)[:40]} outside the Float64 range"
        if not finite:
            return f"not a finite number: {value}"
        if self.max_abs is not None and abs(value) > self.max_abs:
            return f"{value} outside the Float32 range"
        return None


@dataclass(frozen=True)
class _Bools:
    def all_ok(self, values: Sequence[Any]) -> bool:
        return _types_within(values, {bool})

    def problem(self, value: Any) -> str | None:
        return None if type(value) is bool else f"expected a boolean, got {_type_name(value)}"


@dataclass(frozen=True)
class _Strings:
    max_len: int
    allow_bytes: bool = False

    def all_ok(self, values: Sequence[Any]) -> bool:
        allowed = {str, bytes} if self.allow_bytes else {str}
        return not values or (_types_within(values, allowed) and max(map(len, values)) <= self.max_len)

    def problem(self, value: Any) -> str | None:
        if not (type(value) is str or (self.allow_bytes and type(value) is bytes)):
            return f"expected a string, got {_type_name(value)}"
        if len(value) > self.max_len:
            return f"{len(value)} characters, more than the limit of {self.max_len}"
        return None


@dataclass(frozen=True)
class _Enum:
    symbols: frozenset[str]

    def all_ok(self, values: Sequence[Any]) -> bool:
        return _types_within(values, {str}) and set(values) <= self.symbols

    def problem(self, value: Any) -> str | None:
        if type(value) is str and value in self.symbols:
            return None
        return f"{str(value)[:64]!r} is not one of the enum symbols"


@dataclass(frozen=True)
class _EpochRange:
    """DateTime64 (epoch ms or us, or aware datetime) or Date32 (days, or date) values within ClickHouse's range."""

    lo: int
    hi: int  # inclusive
    unit: str  # "ms", "us" or "days"

    def all_ok(self, values: Sequence[Any]) -> bool:
        return not values or (
            _types_within(values, {int}) and self.lo <= min(values) and max(values) <= self.hi
        )

    def _as_int(self, value: Any) -> int | None:
        if type(value) is int:
            return value
        if self.unit == "days" and type(value) is dt.date:
            return (value - dt.date(1970, 1, 1)).days
        if self.unit != "days" and isinstance(value, dt.datetime) and value.tzinfo is not None:
            scale = 1000 if self.unit == "ms" else 1_000_000
            return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
                microseconds=1_000_000 // scale
            )
        return None

    def problem(self, value: Any) -> str | None:
        n = self._as_int(value)
        if n is None:
            return f"expected epoch {self.unit} (integer), got {_type_name(value)}"
        if not self.lo <= n <= self.hi:
            return f"{n} {self.unit} since epoch outside ClickHouse's range 1900-01-01 .. 2299-12-31"
        return None


@dataclass(frozen=True)
class _Array:
    items: ValueCheck

    def all_ok(self, values: Sequence[Any]) -> bool:
        return _types_within(values, {list}) and self.items.all_ok(
            list(itertools.chain.from_iterable(values))
        )

    def problem(self, value: Any) -> str | None:
        if type(value) is not list:
            return f"expected an array, got {_type_name(value)}"
        for i, v in enumerate(value):
            if (p := self.items.problem(v)) is not None:
                return f"element {i}: {p}"
        return None


@dataclass(frozen=True)
class _Nullable:
    inner: ValueCheck

    def all_ok(self, values: Sequence[Any]) -> bool:
        return self.inner.all_ok([v for v in values if v is not None])

    def problem(self, value: Any) -> str | None:
        return None if value is None else self.inner.problem(value)


@dataclass(frozen=True)
class _NotNull:
    inner: ValueCheck

    def all_ok(self, values: Sequence[Any]) -> bool:
        return self.inner.all_ok(values)

    def problem(self, value: Any) -> str | None:
        return "null in a column that is not Nullable" if value is None else self.inner.problem(value)


_PRIMITIVE_CHECKS: dict[str, ValueCheck] = {
    "long": _Ints(*_INT64),
    "int": _Ints(*_INT32),
    "double": _Floats(),
    "float": _Floats(_FLOAT32_MAX),
    "boolean": _Bools(),
    "bytes": _Strings(MAX_BLOB_CHARS, allow_bytes=True),
}
_EPOCH_CHECKS: dict[str, ValueCheck] = {
    "timestamp-millis": _EpochRange(DATETIME64_MIN_MS, DATETIME64_END_MS - 1, "ms"),
    "timestamp-micros": _EpochRange(DATETIME64_MIN_MS * 1000, DATETIME64_END_MS * 1000 - 1, "us"),
    "date": _EpochRange(DATE32_MIN_DAYS, DATE32_MAX_DAYS, "days"),
}
_JSON = _Strings(MAX_BLOB_CHARS)


def value_check(avro_type: Any, max_chars: int = DEFAULT_MAX_STRING_CHARS) -> ValueCheck:
    """The check of the ClickHouse column an Avro field type maps to (mirrors ``column_type``/``RowEncoder``)."""
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if stored_as_json(avro_type):
            return _Nullable(_JSON) if "null" in avro_type else _NotNull(_JSON)
        inner = _unwrap(value_check(non_null[0], max_chars))
        return _Nullable(inner) if "null" in avro_type else _NotNull(inner)
    if isinstance(avro_type, str):
        return _NotNull(_PRIMITIVE_CHECKS.get(avro_type, _Strings(max_chars)))
    if is_complex(avro_type):
        return _NotNull(_JSON)
    if avro_type.get("logicalType") in _EPOCH_CHECKS:
        return _NotNull(_EPOCH_CHECKS[avro_type["logicalType"]])
    t = avro_type["type"]
    if t == "enum":
        return _NotNull(_Enum(frozenset(avro_type["symbols"])))
    if t == "array":
        return _NotNull(_Array(_unwrap(value_check(avro_type["items"], max_chars))))
    if t == "fixed":
        return _NotNull(_Strings(MAX_BLOB_CHARS, allow_bytes=True))
    return value_check(t, max_chars)


def _unwrap(check: ValueCheck) -> ValueCheck:
    return check.inner if isinstance(check, _NotNull) else check


class RowValidator:
    """Finds the rows of a column-oriented batch that the sink's table cannot store.

    ``max_string_chars`` bounds plain string columns; ``string_limits`` overrides it per column (characters).
    """

    def __init__(
        self,
        contract: AvroContract,
        max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
        string_limits: Mapping[str, int] | None = None,
    ):
        limits = string_limits or {}
        self.columns = [f["name"] for f in contract.raw["fields"]]
        self.checks = [
            value_check(f["type"], limits.get(f["name"], max_string_chars)) for f in contract.raw["fields"]
        ]

    def invalid_rows(self, columns: Sequence[Sequence[Any]]) -> dict[int, str]:
        """Row index -> reason (``column `name`: what is wrong``) of every row with at least one bad value."""
        bad: dict[int, str] = {}
        for name, check, values in zip(self.columns, self.checks, columns, strict=True):
            if check.all_ok(values):
                continue
            for i, v in enumerate(values):
                if i not in bad and (p := check.problem(v)) is not None:
                    bad[i] = f"column `{name}`: {p}"
        return bad
