"""Synthetic 15-minute intervals (avro/IntervalEnergy.avsc) and flexibility orders (avro/FlexOrder.avsc) of
prosumers, deterministic, for tests and benchmarks of the stages that consume them (baselines, forecasts).

Load (kW, mean net power of a slot): a per-prosumer base, an evening peak, a weekend offset and a small
deterministic wobble, so look-backs have days of different weight and baselines are not trivially flat.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

SLOT_MS = 900_000
DAY_MS = 86_400_000


def load_kw(prosumer_index: int, slot_start_ms: int) -> float:
    """Mean net power (kW) of prosumer ``prosumer_index`` in the slot starting at ``slot_start_ms`` (UTC ms)."""
    hour = (slot_start_ms % DAY_MS) / 3_600_000
    weekend = datetime.fromtimestamp(slot_start_ms / 1000, UTC).weekday() >= 5
    day = slot_start_ms // DAY_MS
    peak = 1.5 * math.exp(-(((hour - 19.0) / 2.5) ** 2))
    wobble = 0.1 * math.sin(day * 1.7 + prosumer_index) + 0.05 * math.sin(slot_start_ms / 3_700_000)
    return round(0.5 + 0.1 * prosumer_index + peak + (0.4 if weekend else 0.0) + wobble, 6)


def pv_kw(slot_start_ms: int, peak_kw: float = 3.0) -> float:
    """Mean PV output (kW) of a clear-sky day in the slot starting at ``slot_start_ms`` (UTC ms): a half sine
    from 06:00 to 18:00 UTC, ``peak_kw`` at noon."""
    hour = (slot_start_ms % DAY_MS) / 3_600_000
    return round(peak_kw * max(0.0, math.sin(math.pi * (hour - 6.0) / 12.0)), 6)


def interval(
    prosumer_id: str,
    start_ms: int,
    kw: float,
    *,
    device_id: str | None = None,
    version: int = 1,
    completeness: float = 1.0,
    computed_at: int | None = None,
) -> dict[str, Any]:
    """One IntervalEnergy record of 15 minutes starting at ``start_ms`` (UTC epoch ms) with mean ``kw``, computed at
    ``computed_at`` (UTC epoch ms; default: the interval's end)."""
    device = device_id or f"m-{prosumer_id}"
    wh = kw * 250.0  # kW over 15 min, in Wh
    return {
        "event_id": f"{device}/{start_ms}/{version}",
        "prosumer_id": prosumer_id,
        "device_id": device,
        "interval_start": start_ms,
        "interval_end": start_ms + SLOT_MS,
        "import_wh": max(wh, 0.0),
        "export_wh": max(-wh, 0.0),
        "avg_kw": kw,
        "max_kw": kw,
        "samples": 180,
        "expected_samples": 180,
        "completeness": completeness,
        "method": "POWER_INTEGRATION",
        "estimated": False,
        "version": version,
        "computed_at": start_ms + SLOT_MS if computed_at is None else computed_at,
    }


def intervals(prosumers: Sequence[str], first_slot_ms: int, slots: int) -> Iterator[dict[str, Any]]:
    """Intervals of every prosumer for ``slots`` consecutive slots from ``first_slot_ms``, slot by slot."""
    for s in range(slots):
        start = first_slot_ms + s * SLOT_MS
        for i, p in enumerate(prosumers):
            yield interval(p, start, load_kw(i, start))


def flex_order(
    order_id: str, allocations: Sequence[tuple[str, int]], *, status: str = "ACTIVE", created_at: int = 0
) -> dict[str, Any]:
    """A FlexOrder reducing 1 kW for each ``(prosumer_id, slot_start_ms)`` allocation."""
    return {
        "event_id": f"{order_id}/1",
        "order_id": order_id,
        "offer_id": f"offer-{order_id}",
        "request_id": f"req-{order_id}",
        "revision": 1,
        "direction": "REDUCE",
        "status": status,
        "allocations": [
            {"prosumer_id": p, "slot_start": t, "kw": 1.0, "baseline_kw": 2.0} for p, t in allocations
        ],
        "slot_minutes": 15,
        "created_at": created_at,
    }
