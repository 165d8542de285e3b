"""Parser for the SMX gateway payload (seed-catalogue §3.2, Annex IV T77) carrying Wally-A SMM readings.

Payload: a JSON object ``{"<name>": {"unit": "<unit>", "value": "<string>"}, ...}`` (unit omitted when
dimensionless); values are zero-padded strings with an optional SI suffix or ``"n/a"``. Names may carry the
``wallya1/`` prefix and ``/value`` suffix of the T77 mapping table. ``.SERVER_TIME`` (UTC, ``YYYY-MM-DD
HH:MM:SS``) is the device timestamp; ``.REQUEST_TIME`` is local time and ignored.

Two layers: :func:`parse_payload` turns every entry into an :class:`SmxField` (name, value in the contract unit,
quality), and :func:`to_readings` keeps the fields mapped to a contract quantity (:data:`SMX_QUANTITIES`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from connectors.models import Phase, Quality, Quantity, Reading, SourceProtocol, TsSource
from connectors.values import UnknownUnit, normalise_unit, parse_number

# T77 verbatim: Wally-A path -> LD01 code (31 mappings).
WALLYA_TO_LD01: dict[str, str] = {
    "wallya1/RmsFormatted Voltage L1-N/value": "LD01/1-1-32-7-0-255/-2",
    "wallya1/RmsFormatted Voltage L2-N/value": "LD01/1-1-52-7-0-255/-2",
    "wallya1/RmsFormatted Voltage L3-N/value": "LD01/1-1-72-7-0-255/-2",
    "wallya1/Rms Voltage L1-N/value": "LD01/1-1-32-7-0-255/-9",
    "wallya1/Rms Voltage L2-N/value": "LD01/1-1-52-7-0-255/-9",
    "wallya1/Rms Voltage L3-N/value": "LD01/1-1-72-7-0-255/-9",
    "wallya1/RmsFormatted Current L1-N/value": "LD01/1-1-31-7-0-255/-2",
    "wallya1/RmsFormatted Current L2-N/value": "LD01/1-1-51-7-0-255/-2",
    "wallya1/RmsFormatted Current L3-N/value": "LD01/1-1-71-7-0-255/-2",
    "wallya1/Rms Current L1-N/value": "LD01/1-1-31-7-0-255/-9",
    "wallya1/Rms Current L2-N/value": "LD01/1-1-51-7-0-255/-9",
    "wallya1/Rms Current L3-N/value": "LD01/1-1-71-7-0-255/-9",
    "wallya1/ActiveFormatted Power Phase L1/value": "LD01/1-1-36-7-0-255/-2",
    "wallya1/ActiveFormatted Power Phase L2/value": "LD01/1-1-56-7-0-255/-2",
    "wallya1/ActiveFormatted Power Phase L3/value": "LD01/1-1-76-7-0-255/-2",
    "wallya1/ActiveFormatted Power 3-Phase/value": "LD01/1-1-16-7-0-255/-2",
    "wallya1/Active Power Phase L1/value": "LD01/1-1-36-7-0-255/-9",
    "wallya1/Active Power Phase L2/value": "LD01/1-1-56-7-0-255/-9",
    "wallya1/Active Power Phase L3/value": "LD01/1-1-76-7-0-255/-9",
    "wallya1/Active Power 3-Phase/value": "LD01/1-1-16-7-0-255/-9",
    "wallya1/FundamentalFormatted Reactive Power Phase L1/value": "LD01/1-1-23-7-0-255/-2",
    "wallya1/FundamentalFormatted Reactive Power Phase L2/value": "LD01/1-1-43-7-0-255/-2",
    "wallya1/FundamentalFormatted Reactive Power Phase L3/value": "LD01/1-1-63-7-0-255/-2",
    "wallya1/FundamentalFormatted Reactive Power 3-Phase/value": "LD01/1-1-3-7-0-255/-2",
    "wallya1/Fundamental Reactive Power Phase L1/value": "LD01/1-1-23-7-0-255/-9",
    "wallya1/Fundamental Reactive Power Phase L2/value": "LD01/1-1-43-7-0-255/-9",
    "wallya1/Fundamental Reactive Power Phase L3/value": "LD01/1-1-63-7-0-255/-9",
    "wallya1/Fundamental Reactive Power 3-Phase/value": "LD01/1-1-3-7-0-255/-9",
    "wallya1/Delivered Active Energy/value": "LD01/1-1-2-8-0-255/-2",
    "wallya1/Received Active Energy/value": "LD01/1-1-1-8-0-255/-2",
    "wallya1/Frequency/value": "LD01/1-1-14-7-0-255/-2",
}


@lru_cache(maxsize=4096)  # a fleet repeats the same ~80 names in every payload
def short_name(name: str) -> str:
    """``wallya1/Active Power 3-Phase/value`` -> ``Active Power 3-Phase`` (other names unchanged)."""
    if name.startswith("wallya1/"):
        name = name[len("wallya1/") :]
    if name.endswith("/value"):
        name = name[: -len("/value")]
    return name


def ld01_to_obis(ld01: str) -> str:
    """``LD01/1-1-32-7-0-255/-9`` -> ``1-1:32.7.0`` (IEC 62056-61 A-B:C.D.E; F=255 omitted)."""
    a, b, c, d, e, f = ld01.split("/")[1].split("-")
    code = f"{a}-{b}:{c}.{d}.{e}"
    return code if f == "255" else f"{code}*{f}"


# Short name -> OBIS for the 31 mappings (the "Formatted" variants share the OBIS code of the raw ones).
OBIS_BY_NAME: dict[str, str] = {short_name(k): ld01_to_obis(v) for k, v in WALLYA_TO_LD01.items()}

_PHASES = {"L1": Phase.L1, "L2": Phase.L2, "L3": Phase.L3, "L4": Phase.N, "3-Phase": Phase.TOTAL}
_LL = {"L1-L2": Phase.L12, "L2-L3": Phase.L23, "L3-L1": Phase.L31}


def _build_quantities() -> dict[str, tuple[Quantity, Phase]]:
    q: dict[str, tuple[Quantity, Phase]] = {}
    for fmt in ("", "Formatted"):
        for ph in ("L1", "L2", "L3", "3-Phase"):
            suffix = f"Phase {ph}" if ph != "3-Phase" else ph
            q[f"Active{fmt} Power {suffix}"] = (Quantity.P_ACTIVE, _PHASES[ph])
            q[f"Fundamental{fmt} Reactive Power {suffix}"] = (Quantity.Q_REACTIVE, _PHASES[ph])
        for ph in ("L1", "L2", "L3", "L4"):
            q[f"Rms{fmt} Voltage {ph}-N"] = (Quantity.VOLTAGE_LN, _PHASES[ph])
            q[f"Rms{fmt} Current {ph}-N"] = (Quantity.CURRENT, _PHASES[ph])
    for ph in ("L1", "L2", "L3", "3-Phase"):
        suffix = f"Phase {ph}" if ph != "3-Phase" else ph
        q[f"Apparent Power {suffix}"] = (Quantity.S_APPARENT, _PHASES[ph])
    for name, ph in _LL.items():
        q[f"Rms Voltage {name}"] = (Quantity.VOLTAGE_LL, ph)
    q["Frequency"] = (Quantity.FREQUENCY, Phase.TOTAL)
    q["PF 3-Phase"] = (Quantity.POWER_FACTOR, Phase.TOTAL)
    q["Apparent Energy"] = (Quantity.E_APPARENT, Phase.TOTAL)
    # OBIS C=1 (+A, import) is "Received", C=2 (-A, export) is "Delivered" (T77 mapping table).
    q["Received Active Energy"] = (Quantity.E_IMPORT, Phase.TOTAL)
    q["Delivered Active Energy"] = (Quantity.E_EXPORT, Phase.TOTAL)
    return q


# Short name -> (quantity, phase) for every SMX entry that has a contract quantity.
SMX_QUANTITIES: dict[str, tuple[Quantity, Phase]] = _build_quantities()

MAPPED_NAMES: frozenset[str] = frozenset(SMX_QUANTITIES)

# Plausibility limits in contract units; outside -> BAD.
SMX_RANGES: dict[Quantity, tuple[float, float]] = {
    Quantity.FREQUENCY: (40.0, 70.0),
    Quantity.VOLTAGE_LN: (0.0, 1000.0),
    Quantity.VOLTAGE_LL: (0.0, 1700.0),
    Quantity.POWER_FACTOR: (-1.0, 1.0),
}


class SmxPayloadError(ValueError):
    """The payload is not an SMX JSON object."""


class SmxField(NamedTuple):
    """One payload entry: value in ``unit`` (a contract unit), ``None`` with quality BAD when n/a/unparsable.
    (Immutable; a NamedTuple, cheaper to build than a frozen dataclass: one per entry of every payload.)"""

    name: str
    raw: str | None
    value: float | None
    unit: str
    quality: Quality


@dataclass(frozen=True, slots=True)
class SmxPayload:
    """A parsed payload: device timestamp (UTC epoch ms, ``None`` if absent/unparsable) and all fields."""

    server_ts: int | None
    fields: dict[str, SmxField]
    texts: dict[str, str]  # non-numeric entries (e.g. "Currents Sequence": "L1-L2-L3")


TEXT_FIELDS = frozenset({"Currents Sequence", "Voltages Sequence", "Digital Inputs (0:OFF 1:ON)"})


@lru_cache(maxsize=256)  # every gateway of a round reports the same second
def parse_smx_time(text: str) -> int | None:
    """``"2019-06-07 21:44:38"`` interpreted as UTC -> epoch ms; ``None`` when unparsable."""
    try:
        dt = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except (ValueError, AttributeError):
        return None
    return int(dt.timestamp() * 1000)


def _field(name: str, entry: Any) -> SmxField:
    if isinstance(entry, Mapping):
        raw = entry.get("value")
        device_unit = entry.get("unit")
    else:
        raw, device_unit = entry, None
    try:
        unit, factor = normalise_unit(device_unit)
    except UnknownUnit:
        return SmxField(name, None if raw is None else str(raw), None, str(device_unit), Quality.BAD)
    value = parse_number(raw)
    if value is None:
        return SmxField(name, None if raw is None else str(raw), None, unit, Quality.BAD)
    return SmxField(name, str(raw), value * factor, unit, Quality.GOOD)


def parse_payload(payload: bytes | str | Mapping[str, Any], only: Iterable[str] | None = None) -> SmxPayload:
    """Parse an SMX payload (JSON bytes/str or decoded object) into typed fields. Never drops an entry:
    unparsable numbers become value ``None`` with quality BAD. ``only`` restricts the numeric fields parsed
    (short names; the hot path passes the mapped ones)."""
    wanted = None if only is None else (only if isinstance(only, set | frozenset) else set(only))
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SmxPayloadError(f"not JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise SmxPayloadError(f"expected a JSON object, got {type(payload).__name__}")
    server_ts: int | None = None
    fields: dict[str, SmxField] = {}
    texts: dict[str, str] = {}
    for key, entry in payload.items():
        name = short_name(str(key))
        if name == ".SERVER_TIME":
            raw_time = entry.get("value") if isinstance(entry, Mapping) else entry
            server_ts = parse_smx_time(str(raw_time))
            continue
        if name.startswith("."):
            continue
        if name in TEXT_FIELDS:
            texts[name] = str(entry.get("value") if isinstance(entry, Mapping) else entry)
            continue
        if wanted is not None and name not in wanted:
            continue
        fields[name] = _field(name, entry)
    return SmxPayload(server_ts, fields, texts)


def _in_range(quantity: Quantity, value: float) -> bool:
    lim = SMX_RANGES.get(quantity)
    return lim is None or lim[0] <= value <= lim[1]


def to_readings(
    parsed: SmxPayload,
    device_id: str,
    poll_ts: int,
    prosumer_id: str | None = None,
    site_id: str | None = None,
    names: Iterable[str] | None = None,
) -> list[Reading]:
    """Readings for the fields with a contract quantity (optionally only ``names``).

    The ``Formatted`` and raw variants of a value carry the same quantity/phase/OBIS code; when both are present
    the raw one wins (one reading per quantity and phase, so event ids stay unique). Timestamp: ``.SERVER_TIME``
    (DEVICE) when present and parsable, else ``poll_ts`` (POLL).
    """
    ts, ts_source = (parsed.server_ts, TsSource.DEVICE) if parsed.server_ts else (poll_ts, TsSource.POLL)
    wanted = set(names) if names is not None else None
    chosen: dict[tuple[Quantity, Phase], tuple[SmxField, bool]] = {}
    for name, f in parsed.fields.items():
        if wanted is not None and name not in wanted:
            continue
        mapped = SMX_QUANTITIES.get(name)
        if mapped is None:
            continue
        formatted = "Formatted" in name
        prev = chosen.get(mapped)
        if prev is None or (prev[1] and not formatted):
            chosen[mapped] = (f, formatted)
    out: list[Reading] = []
    for (quantity, phase), (f, _) in chosen.items():
        quality, value = f.quality, f.value
        if value is not None and not _in_range(quantity, value):
            quality = Quality.BAD
        out.append(
            Reading(
                device_id=device_id,
                quantity=quantity,
                value=value,
                unit=f.unit,
                ts=ts,
                ts_source=ts_source,
                source_protocol=SourceProtocol.MQTT,
                phase=phase,
                quality=quality,
                obis_code=OBIS_BY_NAME.get(f.name),
                prosumer_id=prosumer_id,
                site_id=site_id,
            )
        )
    return out
