"""One prosumer's look-back and the Baseline records issued from it (pure, engine-independent).

A prosumer's history is a set of daily load rows ``rows[day]`` (``day``: UTC day number, epoch ms // ``DAY_MS``;
a row: 96 slot means of net power, kW, NaN where unknown) and its event days (UTC day numbers with a flexibility
order, never part of a look-back). A slot's kW is the sum over the prosumer's devices of the latest version of
each device's interval (:func:`merge_reading`, :func:`slot_kw`).

:func:`day_ahead` gives the 96 day-ahead records of a day (version 1, no same-day adjustment) and
:func:`slot_ahead` the adjusted record of one slot (version 2), both from the look-back window of
``cfg.max_lookback_days + 1`` days before the target day (see :func:`~streams.analytics.baselines.day_baseline`).
The streaming stage (:mod:`streams.analytics.baseline_processor`) and
:class:`~streams.analytics.baseline_service.BaselineService` share these functions.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from streams.analytics.baselines import (
    DAY_MS,
    SLOT_MS,
    SLOTS_PER_DAY,
    BaselineConfig,
    DayBaseline,
    baseline_record,
    baseline_records,
    day_baseline,
    day_kinds,
)

#: ``device_id -> (version, kW)`` of one slot, in arrival order of the devices (the sum follows that order).
SlotReadings = MutableMapping[str, Any]

DAY_AHEAD_VERSION = 1
SLOT_AHEAD_VERSION = 2


def merge_reading(slot: SlotReadings, device_id: str, version: int, kw: float) -> bool:
    """Keep the latest version of each device's interval (an equal version replaces: a re-emission).

    Returns False (and changes nothing) when ``version`` is older than the one stored."""
    old = slot.get(device_id)
    if old is not None and old[0] > version:
        return False
    slot[device_id] = [version, kw]
    return True


def slot_kw(slot: SlotReadings) -> float:
    """Net power of the prosumer in the slot, kW: the sum of its devices' latest intervals."""
    return sum(kw for _, kw in slot.values())


def first_lookback_day(day: int, cfg: BaselineConfig) -> int:
    """First UTC day number of the look-back window of ``day`` (the window ends with ``day`` itself)."""
    return day - cfg.max_lookback_days - 1


def prune_before_day(watermark_ms: int, cfg: BaselineConfig) -> int:
    """Days before this UTC day number never enter a look-back again once event time reached ``watermark_ms``
    (UTC epoch ms): the stage forgets them (it keeps ``max_lookback_days + 2`` days)."""
    return (watermark_ms - (cfg.max_lookback_days + 2) * DAY_MS) // DAY_MS


@lru_cache(maxsize=4096)
def _date(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


def _day_baseline(
    rows: Mapping[int, np.ndarray], event_days: Collection[int], day: int, cfg: BaselineConfig, same_day: bool
) -> DayBaseline | None:
    """Baseline of ``day`` from its look-back grid (``source_days`` index the window from its first day)."""
    first = first_lookback_day(day, cfg)
    n = day - first + 1
    load = np.full((n, SLOTS_PER_DAY), np.nan)
    for d in range(first, day + 1):
        row = rows.get(d)
        if row is not None:
            load[d - first] = row
    days = np.arange(first, day + 1)
    excluded = np.isin(days, list(event_days))
    return day_baseline(load, n - 1, day_kinds(days * DAY_MS), excluded, cfg, same_day=same_day)


def day_ahead(
    prosumer_id: str,
    rows: Mapping[int, np.ndarray],
    event_days: Collection[int],
    day: int,
    cfg: BaselineConfig,
    computed_at: int,
) -> list[dict[str, Any]]:
    """The 96 day-ahead Baseline records of UTC day number ``day`` (version 1, unadjusted); none without any
    usable look-back day. ``computed_at``: UTC epoch ms written into the records."""
    bl = _day_baseline(rows, event_days, day, cfg, same_day=False)
    if bl is None:
        return []
    unadjusted = DayBaseline(bl.kw, np.zeros(SLOTS_PER_DAY), bl.source_days)
    first = first_lookback_day(day, cfg)
    dates = [_date(d) for d in range(first, day + 1)]
    return baseline_records(prosumer_id, day * DAY_MS, dates, unadjusted, cfg, computed_at, DAY_AHEAD_VERSION)


def slot_ahead(
    prosumer_id: str,
    rows: Mapping[int, np.ndarray],
    event_days: Collection[int],
    slot_start_ms: int,
    cfg: BaselineConfig,
    computed_at: int,
) -> dict[str, Any] | None:
    """Adjusted Baseline record (version 2) of the slot starting at ``slot_start_ms`` (UTC epoch ms); its
    same-day adjustment only uses data before ``slot - cfg.adjust_lead_slots``. None without a baseline."""
    day = slot_start_ms // DAY_MS
    bl = _day_baseline(rows, event_days, day, cfg, same_day=True)
    if bl is None:
        return None
    first = first_lookback_day(day, cfg)
    dates = [_date(first + j) for j in bl.source_days]
    slot = (slot_start_ms % DAY_MS) // SLOT_MS
    return baseline_record(prosumer_id, day * DAY_MS, slot, dates, bl, cfg, computed_at, SLOT_AHEAD_VERSION)
