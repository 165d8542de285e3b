"""The demo community's metered history as 15-min interval energy, as a meter data hub's export would give it.

On its first start the demo publishes, beside the last hour of raw readings (a connector flushing its buffer), the
day before that hour as ``IntervalEnergy`` records on ``meter.intervals.15m.v1``: the interval stage corrects at
most an hour back (``correction_horizon_ms``), so older history enters as intervals, the way an aggregator imports
a new customer's metered past. The records integrate the same metered power the meters report (1-min samples,
import and export apart), so history and live intervals are one series; ids follow the interval stage's
(``device/interval_start/1``) and the history ends where the raw readings begin, so none collides with a live one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from edream.demo.community import Community, Prosumer

SLOT_MS = 900_000
SAMPLE_MS = 60_000
SAMPLES = SLOT_MS // SAMPLE_MS


def interval_record(community: Community, p: Prosumer, start_ms: int, computed_at_ms: int) -> dict[str, Any]:
    """One 15-min ``IntervalEnergy`` of ``p`` from ``start_ms`` (UTC epoch ms): its metered kW sampled each minute
    (mid-minute), integrated into import and export Wh."""
    kw = [community.metered_kw(p, t + SAMPLE_MS // 2) for t in range(start_ms, start_ms + SLOT_MS, SAMPLE_MS)]
    to_wh = SAMPLE_MS / 3_600_000 * 1000.0
    import_wh = sum(max(k, 0.0) for k in kw) * to_wh
    export_wh = sum(max(-k, 0.0) for k in kw) * to_wh
    return {
        "event_id": f"{p.device_id}/{start_ms}/1",
        "prosumer_id": p.prosumer_id,
        "device_id": p.device_id,
        "interval_start": start_ms,
        "interval_end": start_ms + SLOT_MS,
        "import_wh": round(import_wh, 3),
        "export_wh": round(export_wh, 3),
        "avg_kw": round((import_wh - export_wh) / 250.0, 4),
        "max_kw": round(max(kw), 4),
        "samples": SAMPLES,
        "expected_samples": SAMPLES,
        "completeness": 1.0,
        "method": "POWER_INTEGRATION",
        "estimated": False,
        "version": 1,
        "computed_at": computed_at_ms,
    }


def interval_history(
    community: Community, end_ms: int, hours: int, computed_at_ms: int
) -> Iterator[dict[str, Any]]:
    """Every prosumer's 15-min intervals of the ``hours`` before ``end_ms`` (rounded down to a quarter hour),
    oldest first (per prosumer in event time, as the forecasts stage learns them)."""
    last = end_ms // SLOT_MS * SLOT_MS
    for start in range(last - hours * 3_600_000, last, SLOT_MS):
        for p in community.prosumers:
            yield interval_record(community, p, start, computed_at_ms)
