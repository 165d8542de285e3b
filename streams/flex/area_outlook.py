"""The area desk's slot outlook, kept per prosumer in the partition state of the area (stage ``flex``).

Three small JSON values per prosumer, each written only by its own input, so a status update every minute does not
rewrite a day of forecast points:

* ``b:<prosumer>``: the prosumer's ``baseline.15m.v1`` slots ``[isp_start, isp_end, version, kW]``;
* ``fc:<prosumer>``: its ``forecast.profiles.v1`` points per property ``{property: [step_ms, [[ts, issued_at, Wh,
  lower, upper, step_ms], ...]]}`` (each point with its own step; the first ``step_ms`` is read for points kept
  without one);
* ``s:<prosumer>``: its latest ``flex.prosumer.status.v1`` (metered kW over the METERED window, delivery so far in
  running slots), from the per-prosumer stage.

:class:`StateOutlook` is the :class:`~streams.flex.outlook.OutlookBook` over those values, loading a prosumer's the
first time it is asked about it (an offer reads only the area's candidates), with the same source order and
fallbacks. Baselines and forecast points older than the outlook's retention before the wall clock are pruned when
their prosumer's value is written. Times are UTC epoch ms, power kW.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from edream.runtime.contract import KeyValueState
from streams.flex.enrolment import Registry
from streams.flex.model import SlotOutlook
from streams.flex.outlook import OutlookBook, OutlookConfig, _Point, _Series

BASELINES, FORECASTS, STATUS = "b:", "fc:", "s:"


class InvalidSummary(ValueError):
    """An outlook input with a value the desk cannot use (not finite, empty slot); dead-lettered."""

    error_type = "InvalidRecord"


def _load(state: KeyValueState, key: str) -> Any:
    raw = state.get(key)
    return None if raw is None else orjson.loads(raw)


def _finite(*values: float | None) -> None:
    for v in values:
        if v is not None and not math.isfinite(v):
            raise InvalidSummary(f"not a finite number: {v}")


class StateOutlook(OutlookBook):
    """OutlookFn over the area's per-prosumer values in ``state`` (see module doc)."""

    def __init__(self, registry: Registry, state: KeyValueState, config: OutlookConfig | None = None):
        super().__init__(registry, config or OutlookConfig())
        self.state = state
        self._loaded: set[str] = set()
        self._status: dict[str, dict[str, Any]] = {}

    # -- loading ---------------------------------------------------------------------------------------------
    def load(self, prosumer_id: str) -> None:
        if prosumer_id in self._loaded:
            return
        self._loaded.add(prosumer_id)
        b = _load(self.state, BASELINES + prosumer_id)
        if b:
            self.baselines[prosumer_id] = {s: (e, v, kw) for s, e, v, kw in b}
        for prop, (step_ms, points) in (_load(self.state, FORECASTS + prosumer_id) or {}).items():
            series = self.forecasts[(prosumer_id, prop)] = _Series()
            for (
                ts,
                i,
                wh,
                lo,
                up,
                *step,
            ) in points:  # points kept before steps were per point have the series'
                series.add(ts, _Point(i, wh, lo, up, step[0] if step else step_ms))
        s = _load(self.state, STATUS + prosumer_id)
        if s is not None:
            self._status[prosumer_id] = s

    def __call__(self, prosumer_id: str, slot_start: int) -> SlotOutlook:
        self.load(prosumer_id)
        return super().__call__(prosumer_id, slot_start)

    def metered_kw(self, prosumer_id: str) -> float | None:
        """The METERED source: the per-prosumer stage's mean net power over the metered window, kW."""
        self.load(prosumer_id)
        s = self._status.get(prosumer_id)
        return None if s is None else s["metered_kw"]

    def delivered_kw(self, prosumer_id: str, slot_start: int) -> float:
        """Flexibility delivered so far by the prosumer in the running slot (energy / slot length, kW, over all its
        orders) as of its latest status; 0 when unknown. A status lags the readings by up to a minute, so what
        the prosumer still owes is over- rather than under-estimated."""
        self.load(prosumer_id)
        s = self._status.get(prosumer_id)
        if s is None:
            return 0.0
        return next((kw for t, kw in s["delivered"] if t == slot_start), 0.0)

    # -- writing ---------------------------------------------------------------------------------------------
    def _save(self, prosumer_id: str) -> None:
        slots = self.baselines.get(prosumer_id, {})
        if slots:
            self.state.set(
                BASELINES + prosumer_id,
                orjson.dumps([[s, e, v, kw] for s, (e, v, kw) in sorted(slots.items())]),
            )
        series = {
            prop: [
                min(sr.steps, default=0),
                [[t, p.issued_at, p.wh, p.lower, p.upper, p.step_ms] for t, p in sorted(sr.points.items())],
            ]
            for (pid, prop), sr in self.forecasts.items()
            if pid == prosumer_id
        }
        if series:
            self.state.set(FORECASTS + prosumer_id, orjson.dumps(series))

    def add_baseline(self, rec: Mapping[str, Any], now: int) -> None:
        """A Baseline record of an enrolled prosumer; ``now``: the wall clock, for pruning."""
        _finite(rec["baseline_kw"])
        if int(rec["isp_end"]) <= int(rec["isp_start"]):
            raise InvalidSummary(f"baseline slot ends at {rec['isp_end']}, before it starts")
        self.load(rec["prosumer_id"])
        self.on_baseline(rec)
        self.prune(now)
        self._save(rec["prosumer_id"])

    def add_forecast(self, rec: Mapping[str, Any], now: int) -> None:
        """A Forecast record of an enrolled prosumer (consumption or production profile)."""
        if int(rec["profile_granularity_minutes"]) <= 0:
            raise InvalidSummary("profile_granularity_minutes must be > 0")
        for p in rec["points"]:
            _finite(p["value"], p.get("lower"), p.get("upper"))
        self.load(rec["entity_id"])
        self.on_forecast(rec)
        self.prune(now)
        self._save(rec["entity_id"])

    def set_status(self, rec: Mapping[str, Any], ts: int) -> bool:
        """The prosumer's latest status (``ts``: its event time); an older one than kept is ignored (False)."""
        _finite(rec.get("metered_kw"), *(d["kw"] for d in rec["delivered"]))
        pid = rec["prosumer_id"]
        self.load(pid)
        kept = self._status.get(pid)
        if kept is not None and kept["ts"] > ts:
            return False
        value = {
            "ts": ts,
            "metered_kw": rec.get("metered_kw"),
            "delivered": [[int(d["slot_start"]), float(d["kw"])] for d in rec["delivered"]],
        }
        self._status[pid] = value
        self.state.set(STATUS + pid, orjson.dumps(value))
        return True
