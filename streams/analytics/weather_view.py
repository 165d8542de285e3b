"""The forecasts stage's weather: one site's hours of ``weather.hourly.v1``, read whole as a registry view.

Every worker reads the compacted topic whole (:class:`edream.runtime.global_view.GlobalView`) and follows it, so
every partition's forecasters see the same weather: the latest record per hour (a newer forecast, then the
observation, replaces the earlier forecast of that hour). :meth:`WeatherView.refresh` decodes only what changed
since the last call (the stage calls it once per record); :meth:`WeatherView.value` serves a forecaster's step.
Records of other sites, undecodable ones and hours whose values fail the bounds of
:data:`streams.analytics.weather.BOUNDS` are skipped (the latter two logged), so a bad record never reaches a model.
"""

from __future__ import annotations

import logging
import math

from edream.runtime.contract import View
from edream.runtime.view_changes import ViewChanges
from edream.serde import Serde
from streams.analytics.weather import BOUNDS, FIELDS

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000


class WeatherView:
    """``view``: the weather topic's registry view; ``location_id``: the site whose hours are read."""

    def __init__(self, view: View, location_id: str, serde: Serde, topic: str):
        self.location_id, self.serde, self.topic = location_id, serde, topic
        self.changes = ViewChanges(view)
        self.hours: dict[int, dict[str, float]] = {}  # hour start (UTC epoch ms) -> field -> value
        self.fields = FIELDS

    def refresh(self) -> None:
        """Take in what the view received since the last call."""
        ch = self.changes.poll()
        prefix = f"{self.location_id}/".encode()
        for key in ch.removed:
            if key.startswith(prefix):
                self.hours.pop(int(key[len(prefix) :]), None)
        for key, raw in ch.changed:
            if key.startswith(prefix):
                self._take(key, raw)

    def _take(self, key: bytes, raw: bytes) -> None:
        try:
            name, rec = self.serde.decode(raw, self.topic)
        except ValueError as exc:
            log.warning("weather view: %r is undecodable (%s); skipped", key, exc)
            return
        hour = rec.get("hour_start") if name == "WeatherHour" else None
        if rec.get("location_id") != self.location_id or not isinstance(hour, int) or hour % HOUR_MS:
            log.warning("weather view: %r is not an hour of %s; skipped", key, self.location_id)
            return
        values = {}
        for f in FIELDS:
            v = rec.get(f)
            lo, hi = BOUNDS[f]
            if v is not None and not (math.isfinite(v) and lo <= v <= hi):
                log.warning("weather view: %r %s = %r is outside [%s, %s]; skipped", key, f, v, lo, hi)
                return
            values[f] = math.nan if v is None else float(v)
        self.hours[hour] = values

    def value(self, name: str, start_ms: int, length_ms: int) -> float:
        """Mean of field ``name`` over the hours that overlap ``[start_ms, start_ms + length_ms)`` and are known
        (a 15-min step takes its hour); NaN when none is."""
        first = start_ms // HOUR_MS * HOUR_MS
        total, n = 0.0, 0
        for h in range(first, start_ms + max(length_ms, 1), HOUR_MS):
            v = self.hours.get(h, {}).get(name, math.nan)
            if not math.isnan(v):
                total, n = total + v, n + 1
        return total / n if n else math.nan
