"""Field checks shared by every contract: typed results that name the field and the reason.

A contract module (``streams.validation.<contract>``) runs a :class:`Checker` over one record and returns its
errors; an empty list means the record may change state (advance a clock, enter a book, reach a slot timer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from edream.serde import DecodeError

#: Identifiers (device, prosumer, request, order, area ids): printable, no whitespace or control characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:/@#+=~-]+")
MAX_ID_LENGTH = 128
#: Longer composite identifiers (event ids built from several ids, e.g. ``connector/device/quantity/phase/ts``).
MAX_EVENT_ID_LENGTH = 512
#: Free text of bounded size (currency codes, service names...).
MAX_TEXT_LENGTH = 256


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem of one record: the ``field`` (dotted path, e.g. ``slots[3].kw``), a machine ``code`` and a
    human ``reason``."""

    field: str
    code: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def describe(errors: Collection[FieldError]) -> str:
    """All errors as one human line (``field: reason; field: reason``)."""
    return "; ".join(str(e) for e in errors)


class InvalidRecord(DecodeError):
    """A decoded record that breaks its contract. Hosting loops dead-letter it like undecodable bytes: original
    bytes, position and the reason (every field error)."""

    def __init__(self, contract: str, errors: Collection[FieldError]):
        self.errors = tuple(errors)
        super().__init__(f"invalid {contract}: {describe(self.errors)}")


class Checker:
    """Collects :class:`FieldError` s; each method checks one field and returns whether it passed."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, code: str, reason: str) -> bool:
        self.errors.append(FieldError(field, code, reason))
        return False

    def identifier(
        self, field: str, value: Any, *, max_len: int = MAX_ID_LENGTH, required: bool = True
    ) -> bool:
        """A non-empty id of at most ``max_len`` characters matching :data:`ID_PATTERN` (None allowed if not
        ``required``)."""
        if value is None or value == "":
            return not required or self.fail(field, "missing_field", "is missing or empty")
        if not isinstance(value, str):
            return self.fail(field, "bad_type", f"must be a string, got {type(value).__name__}")
        if len(value) > max_len:
            return self.fail(field, "too_long", f"has {len(value)} characters, at most {max_len} allowed")
        if not ID_PATTERN.fullmatch(value):
            return self.fail(
                field, "bad_identifier", f"{value[:40]!r} has characters outside [A-Za-z0-9_.:/@#+=~-]"
            )
        return True

    def text(self, field: str, value: Any, *, max_len: int = MAX_TEXT_LENGTH) -> bool:
        if not isinstance(value, str):
            return self.fail(field, "bad_type", f"must be a string, got {type(value).__name__}")
        if len(value) > max_len:
            return self.fail(field, "too_long", f"has {len(value)} characters, at most {max_len} allowed")
        return True

    def number(
        self, field: str, value: Any, lo: float, hi: float, *, integer: bool = False, unit: str = ""
    ) -> bool:
        """A finite number (an int when ``integer``) within ``[lo, hi]``."""
        kinds = int if integer else (int, float)
        if not isinstance(value, kinds) or isinstance(value, bool):
            want = "an integer" if integer else "a number"
            return self.fail(field, "bad_type", f"must be {want}, got {type(value).__name__}")
        if not math.isfinite(value):
            return self.fail(field, "value_not_finite", f"{value!r} is not finite")
        if not lo <= value <= hi:
            return self.fail(
                field, "value_out_of_range", f"{value} outside [{lo}, {hi}]{' ' + unit if unit else ''}"
            )
        return True

    def event_time(self, field: str, ts: Any, now_ms: int, max_past_ms: int, max_future_ms: int) -> bool:
        """A UTC epoch ms within ``[now - max_past_ms, now + max_future_ms]``."""
        if not isinstance(ts, int) or isinstance(ts, bool):
            return self.fail(field, "bad_type", f"must be an int (UTC epoch ms), got {type(ts).__name__}")
        if ts > now_ms + max_future_ms:
            return self.fail(field, "ts_in_future", f"{ts} is {ts - now_ms} ms ahead of now ({now_ms})")
        if ts < now_ms - max_past_ms:
            return self.fail(field, "ts_too_old", f"{ts} is {now_ms - ts} ms before now ({now_ms})")
        return True

    def one_of(self, field: str, value: Any, allowed: Collection[Any]) -> bool:
        if value not in allowed:
            return self.fail(
                field, "unknown_value", f"{str(value)[:40]!r} is not one of {sorted(map(str, allowed))}"
            )
        return True
