"""The prosumers' forecast net power per slot from ``forecast.profiles.v1`` records, for the congestion forecast.

The flex desk's :class:`~streams.flex.outlook.OutlookBook` already keeps the latest-issued point per prosumer,
property and step (intra-day beats day-ahead) and turns consumption minus production (Wh per step of any
granularity) into net kW; the grid reads the same book, so both sides of the platform see one forecast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streams.flex.outlook import OutlookBook
from streams.grid.model import GridModel


def forecast_kw(book: OutlookBook, model: GridModel, slot_starts_ms: Sequence[int]) -> dict[str, np.ndarray]:
    """Per mapped prosumer with a consumption forecast covering every slot (UTC epoch ms starts): net kW per slot,
    import positive. Prosumers without a complete forecast are left out (so :func:`~streams.grid.congestion.
    forecast_matrix` names the first one missing)."""
    out: dict[str, np.ndarray] = {}
    for pid in model.prosumer_ids:
        values = [book.forecast(pid, int(t)) for t in slot_starts_ms]
        if all(v is not None for v in values):
            out[pid] = np.array([v[0] for v in values])  # type: ignore[index]
    return out


@dataclass(frozen=True)
class HorizonForecast:
    """The prosumers' net kW over the slots of a horizon that any mapped prosumer's forecast covers.
    ``slot_starts_ms``: UTC epoch ms, ascending; ``kw``: (slots, prosumers) in ``GridModel.prosumer_ids`` order,
    import positive; ``missing``: per slot, how many mapped prosumers had no forecast there (counted as 0 kW)."""

    slot_starts_ms: np.ndarray
    kw: np.ndarray
    missing: np.ndarray


def horizon_forecast(
    book: OutlookBook, model: GridModel, candidate_slots_ms: Sequence[int]
) -> HorizonForecast:
    """Net kW per prosumer over the ``candidate_slots_ms`` (UTC epoch ms) where at least one mapped prosumer has a
    consumption forecast. A prosumer without one in a slot counts as 0 kW there and the slot's ``missing`` count
    says so: the stage flags the result instead of refusing the whole grid for one silent meter."""
    rows, starts = [], []
    for t in candidate_slots_ms:
        values = [book.forecast(pid, int(t)) for pid in model.prosumer_ids]
        if any(v is not None for v in values):
            starts.append(int(t))
            rows.append([v[0] if v is not None else math.nan for v in values])
    kw = np.array(rows, dtype=float).reshape(len(rows), len(model.prosumer_ids))
    missing = np.isnan(kw).sum(axis=1)
    return HorizonForecast(np.array(starts, dtype=np.int64), np.nan_to_num(kw, nan=0.0), missing)
