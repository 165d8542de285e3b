"""A VEN's TELEMETRY_USAGE report values -> ``Measurement`` records (pure).

Only real power is requested (OpenADR ``powerReal``, unit W with an SI scale such as ``k``): it becomes
``P_ACTIVE`` in W (positive = the site imports). Each value is stamped with the interval start the VEN gave
(``ts_source`` DEVICE) and ``seq`` = that time, so a report sent twice gives the same records (idempotent sinks
key on ``event_id``). The readings carry the VEN's ``prosumer_id`` only when the VEN is that prosumer's net meter
(``Ven.net_meter``). ``source_protocol`` is HTTP: OpenADR 2.0b's simple HTTP profile (the contract's enum has no
OpenADR symbol; ``connector_id`` says it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from connectors.models import Phase, Quality, Quantity, Reading, SourceProtocol, TsSource, to_measurement
from connectors.openadr.config import Ven

#: OpenADR SI scale codes -> factor
SCALES = {"p": 1e-12, "n": 1e-9, "micro": 1e-6, "m": 1e-3, "c": 1e-2, "d": 1e-1, "none": 1.0, None: 1.0}
SCALES |= {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
#: measurement descriptions openleadr gives real power (the description of ``powerReal``)
POWER_DESCRIPTIONS = frozenset({"RealPower", "powerReal"})


def wants_report(measurement: str | None, unit: str | None, scale: str | None) -> bool:
    """Whether we request this report description: real power in W with a known scale."""
    return measurement in POWER_DESCRIPTIONS and unit == "W" and scale in SCALES


def to_measurements(
    ven: Ven,
    connector_id: str,
    resource_id: str,
    scale: str | None,
    values: Iterable[tuple[datetime, Any]],
    now_ms: int,
) -> list[dict[str, Any]]:
    """Measurement records of the (interval start, value) pairs of one report description. A value that is no
    finite number gives a BAD reading (value null), which validation then refuses with its reason."""
    factor = SCALES[scale]
    out = []
    for dtstart, raw in values:
        ts = int(dtstart.timestamp() * 1000)
        value = float(raw) * factor if isinstance(raw, (int, float)) and math.isfinite(raw) else None
        reading = Reading(
            device_id=ven.device_id(resource_id),
            quantity=Quantity.P_ACTIVE,
            value=value,
            unit="W",
            ts=ts,
            ts_source=TsSource.DEVICE,
            source_protocol=SourceProtocol.HTTP,
            phase=Phase.TOTAL,
            quality=Quality.GOOD if value is not None else Quality.BAD,
            prosumer_id=ven.prosumer_id if ven.net_meter else None,
            site_id=ven.site_id,
        )
        out.append(to_measurement(reading, connector_id, seq=ts, ingest_ts=now_ms))
    return out
