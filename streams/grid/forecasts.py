"""The prosumers' forecast net power per slot from ``forecast.profiles.v1`` records, for the congestion forecast.

The flex desk's :class:`~streams.flex.outlook.OutlookBook` already keeps the latest-issued point per prosumer,
property and step (intra-day beats day-ahead) and turns consumption minus production (Wh per step of any
granularity) into net kW; the grid reads the same book, so both sides of the platform see one forecast.
"""

from __future__ import annotations

from collections.abc import Sequence

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
