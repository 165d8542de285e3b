"""From a raw device value and its point config to a :class:`Reading` (pure).

Steps: parse (numbers, numeric strings with SI suffix, n/a) -> ``raw * scale + offset`` -> device unit to
contract unit (``kWh`` -> ``Wh`` x1000) -> plausibility range (``min``/``max`` in the contract unit). Anything
unparsable or out of range keeps its reading with quality BAD (value ``None`` when unparsable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.config import PointBase, TimestampSpec
from connectors.jsonpath import MISSING, get_path, parse_timestamp
from connectors.models import Quality, Reading, SourceProtocol, TsSource
from connectors.values import normalise_unit, parse_number


def make_reading(
    device: Any,
    point: PointBase,
    raw: object,
    ts: int,
    ts_source: TsSource,
    protocol: SourceProtocol,
    device_id: str | None = None,
) -> Reading:
    """A reading of ``point`` for ``device`` (a device config: id, prosumer_id, site_id) at ``ts`` (UTC ms)."""
    unit, factor = normalise_unit(point.unit)
    number = parse_number(raw)
    value: float | None = None
    quality = Quality.BAD
    if number is not None:
        value = (number * point.scale + point.offset) * factor
        in_range = (point.min is None or value >= point.min) and (point.max is None or value <= point.max)
        quality = Quality.GOOD if in_range else Quality.BAD
    return Reading(
        device_id=device_id or device.id,
        quantity=point.quantity,
        value=value,
        unit=unit,
        ts=ts,
        ts_source=ts_source,
        source_protocol=protocol,
        phase=point.phase,
        quality=quality,
        obis_code=point.obis_code,
        prosumer_id=device.prosumer_id,
        site_id=device.site_id,
    )


def document_readings(
    device: Any,
    doc: Any,
    fields: Sequence[Any],
    timestamp: TimestampSpec | None,
    poll_ts: int,
    protocol: SourceProtocol,
    device_id: str | None = None,
) -> list[Reading]:
    """Readings for a JSON document (an MQTT payload, an HTTP response): each field's dotted path mapped with
    :func:`make_reading`; the device's own timestamp when ``timestamp`` finds a parsable one, else ``poll_ts``."""
    ts, src = poll_ts, TsSource.POLL
    if timestamp is not None:
        dev_ts = parse_timestamp(get_path(doc, timestamp.path), timestamp.format, timestamp.timezone)
        if dev_ts is not None:
            ts, src = dev_ts, TsSource.DEVICE
    out = []
    for f in fields:
        raw = get_path(doc, f.path)
        out.append(make_reading(device, f, None if raw is MISSING else raw, ts, src, protocol, device_id))
    return out
