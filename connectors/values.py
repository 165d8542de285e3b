"""Parsing of the string-typed numbers field devices send, and unit normalisation to contract SI units.

The SMX gateway sends zero-padded strings with an optional SI suffix (``"004.280k"`` = 4280.0, ``"n/a"``); the
SpotLink API sends numbers as strings (``"42.5673558"``). Units from devices (``kWh``, ``VAr``, ``kVArh``) are
normalised to the contract's units (``Wh``, ``var``, ``varh``) with the matching factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SI_SUFFIX = {"k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
NOT_AVAILABLE = frozenset({"n/a", "na", "nan", "", "-", "null", "none"})

# device unit -> (contract unit, factor)
UNIT_ALIASES: dict[str, tuple[str, float]] = {
    "W": ("W", 1.0),
    "kW": ("W", 1e3),
    "MW": ("W", 1e6),
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1e3),
    "MWh": ("Wh", 1e6),
    "var": ("var", 1.0),
    "VAr": ("var", 1.0),
    "VAR": ("var", 1.0),
    "kvar": ("var", 1e3),
    "kVAr": ("var", 1e3),
    "varh": ("varh", 1.0),
    "VArh": ("varh", 1.0),
    "kvarh": ("varh", 1e3),
    "kVArh": ("varh", 1e3),
    "VA": ("VA", 1.0),
    "kVA": ("VA", 1e3),
    "VAh": ("VAh", 1.0),
    "kVAh": ("VAh", 1e3),
    "V": ("V", 1.0),
    "kV": ("V", 1e3),
    "A": ("A", 1.0),
    "mA": ("A", 1e-3),
    "Hz": ("Hz", 1.0),
    "%": ("%", 1.0),
    "degC": ("degC", 1.0),
    "°C": ("degC", 1.0),
    "W/m2": ("W/m2", 1.0),
    "1": ("1", 1.0),
    "": ("1", 1.0),
}


class UnknownUnit(ValueError):
    """A device unit with no known mapping to a contract unit."""


def normalise_unit(unit: str | None) -> tuple[str, float]:
    """(contract unit, multiplication factor) for a device unit; ``None``/empty = dimensionless ``"1"``."""
    try:
        return UNIT_ALIASES[(unit or "").strip()]
    except KeyError:
        raise UnknownUnit(f"unknown unit {unit!r}") from None


def parse_number(raw: object) -> float | None:
    """Parse a device number: int/float, or a string with optional zero padding and SI suffix.

    Returns ``None`` for "n/a"-like markers and for anything unparsable or non-finite (the caller flags BAD).
    ``"004.280k"`` -> 4280.0, ``"002573.4636"`` -> 2573.4636, ``"n/a"`` -> None. Booleans are not numbers.
    """
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, int | float):
        value = float(raw)
        return value if math.isfinite(value) else None
    if not isinstance(raw, str):
        return None
    s = raw.strip()
    if s.lower() in NOT_AVAILABLE:
        return None
    factor = 1.0
    if s[-1] in SI_SUFFIX:
        factor = SI_SUFFIX[s[-1]]
        s = s[:-1].strip()
    try:
        value = float(s) * factor
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Range:
    """Plausible range of a value in its contract unit; outside = quality BAD (inclusive bounds)."""

    min: float | None = None
    max: float | None = None

    def contains(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)
