"""A tiny synthetic feed for ``make run``: a few meters publishing active power every 5 s (event time = now).

It exercises the whole minimal path (producer -> topic -> Faust sink agent -> ClickHouse) before the field
connectors and their simulators are running; ``edream run --no-demo`` turns it off.
"""

from __future__ import annotations

import math
import time
from typing import Any


def demo_measurements(now_ms: int, n_meters: int, seq: int) -> list[dict[str, Any]]:
    """One P_ACTIVE reading (W) per meter at ``now_ms`` with a daily-shaped load of 0.2-2.2 kW."""
    hour = (now_ms / 3_600_000) % 24
    out = []
    for i in range(n_meters):
        load_w = 1200 + 1000 * math.sin((hour - 6 + i) / 24 * 2 * math.pi)
        device = f"demo-meter-{i:03d}"
        out.append(
            {
                "event_id": f"demo/{device}/P_ACTIVE/TOTAL/{now_ms}",
                "device_id": device,
                "prosumer_id": f"prosumer-{i:03d}",
                "site_id": "demo-site",
                "quantity": "P_ACTIVE",
                "phase": "TOTAL",
                "value": round(load_w, 1),
                "unit": "W",
                "obis_code": "1-0:1.7.0",
                "quality": "GOOD",
                "source_protocol": "SIMULATOR",
                "connector_id": "demo",
                "ts": now_ms,
                "ts_source": "DEVICE",
                "seq": seq,
                "ingest_ts": int(time.time() * 1000),
            }
        )
    return out
