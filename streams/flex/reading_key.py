"""Which prosumer a raw reading belongs to, read from the Avro bytes without decoding the record.

The per-prosumer flex stage re-keys ``meter.readings.raw.v1`` (keyed by device) to the prosumer, and drops every
reading that cannot matter to flex (not a net active power reading, or of a prosumer that is not enrolled) before
it costs a repartition hop. That decision is made for every reading of the platform, so it must be cheap:
:func:`net_power_prosumer` walks the first fields of the Measurement body (``event_id``, ``device_id``,
``prosumer_id``, ``site_id``, ``quantity``, ``phase``: the order of ``avro/Measurement.avsc``) instead of decoding
the whole record. Messages in another framing or of another writer schema fall back to a full decode.
"""

from __future__ import annotations

from edream.avro_schemas import contract
from edream.serde import SINGLE_OBJECT_MAGIC, Serde

_MEASUREMENT = contract("Measurement")
_HEADER = SINGLE_OBJECT_MAGIC + _MEASUREMENT.fingerprint
_QUANTITIES = [s for f in _MEASUREMENT.raw["fields"] if f["name"] == "quantity" for s in f["type"]["symbols"]]
_P_ACTIVE = _QUANTITIES.index("P_ACTIVE")
_TOTAL = 0  # first symbol of the Phase enum


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """Avro zig-zag long at ``pos``: (value, next position)."""
    shift = result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _skip_string(data: bytes, pos: int) -> int:
    n, pos = _varint(data, pos)
    return pos + n


def net_power_prosumer(value: bytes, serde: Serde) -> str | None:
    """``prosumer_id`` of a net active power reading (quantity ``P_ACTIVE``, phase ``TOTAL``, prosumer set), else
    None. Raises on bytes that are no Measurement (the stage dead-letters them)."""
    if value.startswith(_HEADER):
        data, pos = value, len(_HEADER)
        pos = _skip_string(data, pos)  # event_id
        pos = _skip_string(data, pos)  # device_id
        branch, pos = _varint(data, pos)
        if branch != 1:
            return None  # no prosumer_id
        n, pos = _varint(data, pos)
        prosumer = data[pos : pos + n].decode()
        pos += n
        branch, pos = _varint(data, pos)  # site_id
        if branch == 1:
            pos = _skip_string(data, pos)
        quantity, pos = _varint(data, pos)
        phase, pos = _varint(data, pos)
        return prosumer if quantity == _P_ACTIVE and phase == _TOTAL else None
    name, rec = serde.decode(value)
    if name != "Measurement":
        raise ValueError(f"expected a Measurement, got {name}")
    if rec.get("quantity") != "P_ACTIVE" or rec.get("phase", "TOTAL") != "TOTAL":
        return None
    return rec.get("prosumer_id") or None
