"""Building ``Measurement`` records (avro/Measurement.avsc) for simulators, tests and benchmarks."""

from __future__ import annotations

from typing import Any


def power_reading(
    device_id: str,
    ts_ms: int,
    watts: float,
    *,
    prosumer_id: str | None = None,
    site_id: str | None = None,
    seq: int | None = None,
    connector_id: str = "sim",
    source_protocol: str = "SIMULATOR",
) -> dict[str, Any]:
    """An active-power reading: ``watts`` (W, import positive) at ``ts_ms`` (UTC epoch ms, device time).

    The event id is deterministic (``connector/device/P_ACTIVE/TOTAL/ts``), so a replayed reading is recognised
    as the same event; ``seq`` defaults to the timestamp in seconds.
    """
    return {
        "event_id": f"{connector_id}/{device_id}/P_ACTIVE/TOTAL/{ts_ms}",
        "device_id": device_id,
        "prosumer_id": prosumer_id,
        "site_id": site_id,
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": float(watts),
        "unit": "W",
        "obis_code": "1-0:1.7.0",
        "quality": "GOOD",
        "source_protocol": source_protocol,
        "connector_id": connector_id,
        "ts": ts_ms,
        "ts_source": "DEVICE",
        "seq": ts_ms // 1000 if seq is None else seq,
        "ingest_ts": ts_ms,
    }
