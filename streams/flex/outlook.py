"""The flex desk's slot outlook from the platform's own analytics (LL-UC05 inputs).

:class:`OutlookBook` is fed the ``baseline.15m.v1`` Baseline records, the per-prosumer ``forecast.profiles.v1``
Forecast records and the prosumers' net power readings, and answers ``(prosumer_id, slot_start) ->
SlotOutlook`` for offers, re-dispatch and the baselines frozen into orders.

Where ``baseline_kw`` comes from follows the prosumer's contract ``baseline_method``, falling back in order when the
preferred source has nothing for the slot:

* ``X_OF_Y`` / ``ROLLING_MEAN``: the baselines service's slot baseline -> forecast -> metered;
* ``FORECAST``: forecast -> baseline -> metered;
* ``METERED_BEFORE``: the mean net power over the ``metered_window_ms`` up to the latest reading -> baseline ->
  forecast.

With no source at all the outlook is ``NONE`` and the prosumer offers nothing (its delivery could not be verified).
The source used is on the outlook, so an order's frozen baseline can be traced.

* ``sigma_kw``: from the forecast's 80 % interval (``(upper - lower) / (2 x 1.2816)``, consumption and production
  combined in quadrature); without one, ``default_sigma_fraction x |baseline_kw|``.
* ``pv_kw_per_kwp``: the forecast *export* in the slot divided by the prosumer's PV kWp (capped at 1): curtailing
  PV raises net consumption by at least what would have been exported. Conservative: self-consumed PV is not
  counted. 0 without a production forecast.
* EV plugged-in and battery state of charge are not metered by the platform yet: EVs are assumed connected and
  batteries at ``SlotOutlook``'s default state of charge (documented simplification).

Forecast points are energy per step (Wh); kW = Wh / step hours / 1000. All times are UTC epoch ms.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.flex.enrolment import PvSystem, Registry
from streams.flex.model import SlotOutlook

Z80 = 1.2816  # half-width of the forecasts' 80 % interval in standard deviations
MS_PER_MINUTE = 60_000
ISP_MS = 15 * MS_PER_MINUTE  # baselines are per UTC-aligned 15-minute imbalance settlement period
CONSUMPTION, PRODUCTION = "ENERGY_CONSUMPTION", "ENERGY_PRODUCTION"
_ORDER = {
    "X_OF_Y": ("BASELINE", "FORECAST", "METERED"),
    "ROLLING_MEAN": ("BASELINE", "FORECAST", "METERED"),
    "FORECAST": ("FORECAST", "BASELINE", "METERED"),
    "METERED_BEFORE": ("METERED", "BASELINE", "FORECAST"),
}


@dataclass(frozen=True)
class OutlookConfig:
    """metered_window_ms: averaging window of the METERED source, ms. default_sigma_fraction: forecast
    uncertainty assumed when no forecast interval is known, fraction of |baseline|. retention_ms: how far back
    baselines, forecast points and readings are kept (older ones are pruned)."""

    metered_window_ms: int = 3_600_000
    default_sigma_fraction: float = 0.2
    retention_ms: int = 2 * 86_400_000


@dataclass
class _Point:
    """One forecast point: ``wh`` (lower/upper) over ``step_ms`` from its start, issued at ``issued_at``."""

    issued_at: int
    wh: float
    lower: float | None
    upper: float | None
    step_ms: int = 15 * MS_PER_MINUTE

    def kw(self, wh: float) -> float:
        """Mean power (kW) of ``wh`` over the point's step."""
        return wh * 3_600_000 / self.step_ms / 1000.0


@dataclass
class _Series:
    """Forecast points of one prosumer and property by start: day-ahead (60 min), intra-day (30 min) and hour-ahead
    points mix, each with its own step, and an hour-ahead point starts at its issue time (any quarter hour, not the
    hour); per start the latest issued one is kept."""

    points: dict[int, _Point] = field(default_factory=dict)
    steps: set[int] = field(default_factory=set)
    _starts: list[int] | None = field(default=None, repr=False)  # sorted ``points`` keys; None: to be sorted

    def add(self, ts: int, point: _Point) -> None:
        old = self.points.get(ts)
        if old is None or old.issued_at <= point.issued_at:
            if old is None:
                self._starts = None
            self.points[ts] = point
            self.steps.add(point.step_ms)

    def drop_ending_before(self, cutoff: int) -> None:
        """Forget the points whose step ends before ``cutoff``."""
        for ts in [t for t, p in self.points.items() if t + p.step_ms < cutoff]:
            del self.points[ts]
            self._starts = None

    def at(self, ts: int) -> _Point | None:
        """The latest issued point whose step holds ``ts`` (on a tie the finer step)."""
        if self._starts is None:
            self._starts = sorted(self.points)
        starts, longest = self._starts, max(self.steps, default=0)
        hits = [
            p
            for t in starts[bisect_right(starts, ts - longest) : bisect_right(starts, ts)]
            if ts < t + (p := self.points[t]).step_ms
        ]
        return max(hits, key=lambda p: (p.issued_at, -p.step_ms), default=None)


@dataclass
class OutlookBook:
    """Callable :data:`~streams.flex.offers.OutlookFn` over the analytics the desk has seen (see module doc)."""

    registry: Registry
    config: OutlookConfig = field(default_factory=OutlookConfig)

    def __post_init__(self) -> None:
        self.baselines: dict[
            str, dict[int, tuple[int, int, float]]
        ] = {}  # pid -> isp_start -> (end, ver, kW)
        self.forecasts: dict[tuple[str, str], _Series] = {}
        self.metered: dict[str, dict[int, tuple[float, int]]] = {}  # pid -> minute start -> (sum kW, n)
        self.latest_reading: dict[str, int] = {}

    # -- inputs -------------------------------------------------------------------------------------------
    def on_baseline(self, rec: Mapping[str, Any]) -> None:
        """A Baseline record (baseline.15m.v1); the highest ``version`` per prosumer and slot wins."""
        slots = self.baselines.setdefault(rec["prosumer_id"], {})
        start, version = int(rec["isp_start"]), int(rec.get("version", 1))
        old = slots.get(start)
        if old is None or old[1] <= version:
            slots[start] = (int(rec["isp_end"]), version, float(rec["baseline_kw"]))

    def on_forecast(self, rec: Mapping[str, Any]) -> None:
        """A Forecast record (forecast.profiles.v1); only PROSUMER consumption/production profiles are used, and
        per step the most recently issued point wins (intra-day beats day-ahead)."""
        prop = rec.get("property")
        if rec.get("entity_kind") != "PROSUMER" or prop not in (CONSUMPTION, PRODUCTION):
            return
        step_ms = int(rec["profile_granularity_minutes"]) * MS_PER_MINUTE
        series = self.forecasts.setdefault((rec["entity_id"], prop), _Series())
        issued = int(rec["issued_at"])
        for p in rec["points"]:
            series.add(
                int(p["ts"]), _Point(issued, float(p["value"]), p.get("lower"), p.get("upper"), step_ms)
            )

    def on_reading(self, prosumer_id: str, ts: int, kw: float) -> None:
        """A net power reading (kW, import positive) at ``ts``; kept as per-minute sums for METERED."""
        minute = ts - ts % MS_PER_MINUTE
        s, n = self.metered.setdefault(prosumer_id, {}).get(minute, (0.0, 0))
        self.metered[prosumer_id][minute] = (s + kw, n + 1)
        if ts > self.latest_reading.get(prosumer_id, 0):
            self.latest_reading[prosumer_id] = ts

    def prune(self, now: int) -> None:
        """Forget baselines, forecast points and readings older than ``retention_ms`` before ``now``."""
        cutoff = now - self.config.retention_ms
        for slots in self.baselines.values():
            for start in [s for s, v in slots.items() if v[0] < cutoff]:
                del slots[start]
        for series in self.forecasts.values():
            series.drop_ending_before(cutoff)
        window_start = now - self.config.metered_window_ms
        for minutes in self.metered.values():
            for m in [m for m in minutes if m < min(cutoff, window_start)]:
                del minutes[m]

    # -- sources --------------------------------------------------------------------------------------------
    def baseline_kw(self, prosumer_id: str, slot_start: int) -> float | None:
        """The baseline of the 15-minute ISP (UTC-aligned) containing ``slot_start``, kW."""
        hit = self.baselines.get(prosumer_id, {}).get(slot_start - slot_start % ISP_MS)
        return hit[2] if hit is not None and slot_start < hit[0] else None

    def forecast(self, prosumer_id: str, slot_start: int) -> tuple[float, float | None, float] | None:
        """(net kW, sigma kW or None, export kW) from the forecasts covering ``slot_start``; None without a
        consumption forecast."""
        cons = self.forecasts.get((prosumer_id, CONSUMPTION))
        c = cons.at(slot_start) if cons else None
        if c is None:
            return None
        prod = self.forecasts.get((prosumer_id, PRODUCTION))
        p = prod.at(slot_start) if prod else None
        export_kw = p.kw(p.wh) if p else 0.0
        net = c.kw(c.wh) - export_kw
        sigmas = [(x, _sigma_wh(x)) for x in (c, p) if x is not None]
        sigma = (
            None if any(s is None for _, s in sigmas) else math.hypot(*(x.kw(s) for x, s in sigmas))  # type: ignore[arg-type]
        )
        return net, sigma, export_kw

    def metered_kw(self, prosumer_id: str) -> float | None:
        """Mean net power, kW, of the readings in the whole minutes of the ``metered_window_ms`` that end with the
        minute of the prosumer's latest reading."""
        latest = self.latest_reading.get(prosumer_id)
        if latest is None:
            return None
        since = latest - latest % MS_PER_MINUTE - self.config.metered_window_ms
        total, n = 0.0, 0
        for minute, (s, k) in self.metered[prosumer_id].items():
            if minute > since:
                total, n = total + s, n + k
        return total / n if n else None

    # -- the OutlookFn -------------------------------------------------------------------------------------------
    def __call__(self, prosumer_id: str, slot_start: int) -> SlotOutlook:
        rec = self.registry.get(prosumer_id)
        method = rec.terms.baseline_method if rec else "X_OF_Y"
        fc = self.forecast(prosumer_id, slot_start)
        found: dict[str, float | None] = {
            "BASELINE": self.baseline_kw(prosumer_id, slot_start),
            "FORECAST": fc[0] if fc else None,
        }
        source, baseline = "NONE", 0.0
        for name in _ORDER.get(method, _ORDER["X_OF_Y"]):
            value = found.get(name) if name != "METERED" else self.metered_kw(prosumer_id)
            if value is not None:
                source, baseline = name, value
                break
        if source == "NONE":
            return SlotOutlook(baseline_kw=0.0, source="NONE")
        sigma = fc[1] if fc and fc[1] is not None else self.config.default_sigma_fraction * abs(baseline)
        kwp = sum(a.kwp for a in rec.assets if isinstance(a, PvSystem)) if rec else 0.0
        pv = min(1.0, fc[2] / kwp) if fc and kwp > 0 else 0.0
        return SlotOutlook(baseline_kw=baseline, sigma_kw=sigma, pv_kw_per_kwp=pv, source=source)


def _sigma_wh(p: _Point) -> float | None:
    if p.lower is None or p.upper is None:
        return None
    return max(0.0, (p.upper - p.lower) / (2 * Z80))
