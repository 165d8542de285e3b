"""Clear-sky global horizontal irradiance of a site per hour: what the sun would give without clouds.

pvlib's Ineichen model with the Linke turbidity climatology that ships with pvlib, evaluated every 15 minutes and
averaged over each hour, so it is known for any future hour without a weather forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib

HOUR_MS = 3_600_000
SAMPLES_PER_HOUR = 4


def hourly_clear_sky_ghi(latitude: float, longitude: float, hour_starts_ms: list[int]) -> list[float]:
    """Mean clear-sky GHI (W/m2) over each hour starting at ``hour_starts_ms`` (UTC epoch ms)."""
    if not hour_starts_ms:
        return []
    offsets = (np.arange(SAMPLES_PER_HOUR) + 0.5) * (HOUR_MS // SAMPLES_PER_HOUR)
    ms = (np.asarray(hour_starts_ms, dtype=np.int64)[:, None] + offsets[None, :].astype(np.int64)).ravel()
    times = pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True))
    ghi = pvlib.location.Location(latitude, longitude).get_clearsky(times, model="ineichen")["ghi"]
    return ghi.to_numpy(dtype=float).reshape(-1, SAMPLES_PER_HOUR).mean(axis=1).round(1).tolist()
