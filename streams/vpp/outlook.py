"""What the VPP expects of its assets in a future slot: the latest forecasts and baselines, as mean kW.

:class:`ForecastBook` keeps, per (entity, property, prediction granularity), the latest-issued Forecast record
(avro/Forecast.avsc: points of Wh per step of ``profile_granularity_minutes``); :class:`BaselineBook` keeps
Baseline records (avro/Baseline.avsc: mean kW per 15-minute slot, latest version per slot). Both answer "mean
kW over ``[start, end)``" (UTC epoch ms) or None when the slot is not fully covered.

How the VPP uses them (:func:`export_inputs`, :func:`assets_for_slots`), per asset with a ``forecast_entity_id``:

* PV/wind: available output = the entity's ENERGY_PRODUCTION forecast (kW, clipped to ``[0, p_max_kw]``); firm
  (P10) = the forecast's lower bound when every point has one, else the median x ``uncertainty_min``;
* curtailable loads/EVSE: baseline consumption = the entity's baseline (baseline.15m.v1) when it covers the slot,
  else its ENERGY_CONSUMPTION forecast, clipped to ``[0, p_max_kw]``;
* without a forecast entity (or no covering forecast) the registry's ``current_kw`` stands in; for PV this
  nameplate-based output is derated by the asset's latest degradation estimate (``ResForecast.derate``, see
  :mod:`streams.vpp.pv_degradation`). A covering forecast is learnt from measured production, which already
  shows the degradation, so it is never derated (no double counting).

The community load served before export is the PORTFOLIO forecast whose entity id is the VPP id: net metered
consumption (ENERGY_CONSUMPTION - ENERGY_PRODUCTION, kW; its high case from the bounds); 0 when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from streams.vpp.assets import LOADS, RES, Asset
from streams.vpp.export import ResForecast
from streams.vpp.pv_degradation import DegradationBook, derate_for
from streams.vpp.registry import RegisteredAsset

CONSUMPTION = "ENERGY_CONSUMPTION"
PRODUCTION = "ENERGY_PRODUCTION"
BASELINE_KEEP_MS = 2 * 86_400_000


@dataclass(frozen=True)
class SlotValue:
    """Mean power over a slot, kW, with the bounds' means when every covering point has them."""

    kw: float
    low_kw: float | None = None
    high_kw: float | None = None


def _wh_to_mean_kw(wh: float, span_ms: int) -> float:
    """Energy over a span -> mean power: Wh x 3600 / ms = kW."""
    return wh * 3600.0 / span_ms


@dataclass(frozen=True)
class _Forecast:
    issued_at: int
    step_ms: int
    points: tuple[tuple[int, float, float | None, float | None], ...]  # (ts, Wh, lower Wh, upper Wh)

    def over(self, start: int, end: int) -> SlotValue | None:
        covered, wh, lo, hi = 0, 0.0, 0.0, 0.0
        bounds = True
        for ts, value, lower, upper in self.points:
            overlap = min(end, ts + self.step_ms) - max(start, ts)
            if overlap <= 0:
                continue
            frac = overlap / self.step_ms
            covered += overlap
            wh += value * frac
            if lower is None or upper is None:
                bounds = False
            else:
                lo += lower * frac
                hi += upper * frac
        if covered < end - start:
            return None
        span = end - start
        if not bounds:
            return SlotValue(_wh_to_mean_kw(wh, span))
        return SlotValue(_wh_to_mean_kw(wh, span), _wh_to_mean_kw(lo, span), _wh_to_mean_kw(hi, span))


@dataclass
class ForecastBook:
    """Latest Forecast per (entity_id, property, prediction_granularity)."""

    latest: dict[tuple[str, str, str], _Forecast] = field(default_factory=dict)

    def observe(self, rec: Mapping[str, Any]) -> bool:
        """Keep the record if it is the newest of its key; False for an older or repeated one."""
        key = (str(rec["entity_id"]), str(rec["property"]), str(rec["prediction_granularity"]))
        old = self.latest.get(key)
        if old is not None and old.issued_at >= int(rec["issued_at"]):
            return False
        self.latest[key] = _Forecast(
            int(rec["issued_at"]),
            int(rec["profile_granularity_minutes"]) * 60_000,
            tuple((int(p["ts"]), float(p["value"]), p.get("lower"), p.get("upper")) for p in rec["points"]),
        )
        return True

    def over(self, entity_id: str, prop: str, start: int, end: int) -> SlotValue | None:
        """Mean kW of the newest forecast (any granularity; ties: the finer one) covering ``[start, end)``."""
        best: tuple[int, int, SlotValue] | None = None
        for (entity, p, _gran), fc in self.latest.items():
            if entity != entity_id or p != prop:
                continue
            v = fc.over(start, end)
            if v is not None and (best is None or (fc.issued_at, -fc.step_ms) > best[:2]):
                best = (fc.issued_at, -fc.step_ms, v)
        return None if best is None else best[2]


@dataclass
class BaselineBook:
    """Baseline kW per prosumer and 15-minute slot (latest version wins)."""

    slots: dict[str, dict[int, tuple[int, int, float]]] = field(
        default_factory=dict
    )  # start -> (ver, end, kW)

    def observe(self, rec: Mapping[str, Any]) -> bool:
        per = self.slots.setdefault(str(rec["prosumer_id"]), {})
        start, version = int(rec["isp_start"]), int(rec.get("version", 1))
        old = per.get(start)
        if old is not None and old[0] > version:
            return False
        per[start] = (version, int(rec["isp_end"]), float(rec["baseline_kw"]))
        return True

    def over(self, prosumer_id: str, start: int, end: int) -> float | None:
        """Mean baseline kW over ``[start, end)`` or None unless fully covered."""
        covered, kwms = 0, 0.0
        for s, (_v, e, kw) in (self.slots.get(prosumer_id) or {}).items():
            overlap = min(end, e) - max(start, s)
            if overlap > 0:
                covered += overlap
                kwms += kw * overlap
        return kwms / (end - start) if covered >= end - start else None

    def prune(self, before_ms: int) -> None:
        """Forget slots that ended before ``before_ms``."""
        for pid in list(self.slots):
            kept = {s: v for s, v in self.slots[pid].items() if v[1] >= before_ms}
            if kept:
                self.slots[pid] = kept
            else:
                del self.slots[pid]


def _clip(kw: float, hi: float) -> float:
    return min(max(kw, 0.0), hi)


def res_forecast(
    reg: RegisteredAsset,
    forecasts: ForecastBook,
    start: int,
    end: int,
    degradation: DegradationBook | None = None,
) -> ResForecast:
    """Median and firm output of a PV/wind asset over the slot, kW (see module doc); ``derate`` < 1 only for a
    PV asset on the registry (nameplate) path with a degradation estimate in ``degradation``."""
    a = reg.spec
    if not a.available:
        return ResForecast(a.asset_id, 0.0, 0.0)
    v = forecasts.over(a.forecast_entity_id, PRODUCTION, start, end) if a.forecast_entity_id else None
    p50 = _clip(v.kw if v else a.current_kw, a.p_max_kw)
    p10 = _clip(v.low_kw, p50) if v and v.low_kw is not None else p50 * a.uncertainty_min
    derate = 1.0 if v is not None else derate_for(a, degradation, start)
    return ResForecast(a.asset_id, p50, p10, derate)


def load_kw(
    reg: RegisteredAsset, forecasts: ForecastBook, baselines: BaselineBook, start: int, end: int
) -> float:
    """Baseline consumption of a curtailable load/EVSE over the slot, kW (see module doc)."""
    a = reg.spec
    if a.forecast_entity_id:
        b = baselines.over(a.forecast_entity_id, start, end)
        if b is not None:
            return _clip(b, a.p_max_kw)
        v = forecasts.over(a.forecast_entity_id, CONSUMPTION, start, end)
        if v is not None:
            return _clip(v.kw, a.p_max_kw)
    return _clip(a.current_kw, a.p_max_kw)


def community_load(vpp_id: str, forecasts: ForecastBook, start: int, end: int) -> tuple[float, float | None]:
    """(median, high) net community consumption over the slot, kW; (0, None) without a PORTFOLIO forecast."""
    cons = forecasts.over(vpp_id, CONSUMPTION, start, end)
    if cons is None:
        return 0.0, None
    prod = forecasts.over(vpp_id, PRODUCTION, start, end)
    p50 = cons.kw - (prod.kw if prod else 0.0)
    high_cons = cons.high_kw if cons.high_kw is not None else cons.kw
    low_prod = (prod.low_kw if prod.low_kw is not None else prod.kw) if prod else 0.0
    return p50, max(p50, high_cons - low_prod)


@dataclass(frozen=True)
class ExportInputs:
    """Arguments of :func:`streams.vpp.export.evaluate_export` for one VPP and slot."""

    res: list[ResForecast]
    assets: list[Asset]
    community_load_p50_kw: float
    community_load_high_kw: float | None


def export_inputs(
    vpp_id: str,
    members: Sequence[RegisteredAsset],
    forecasts: ForecastBook,
    baselines: BaselineBook,
    start: int,
    end: int,
    degradation: DegradationBook | None = None,
) -> ExportInputs:
    """RES forecasts (PV on the nameplate path derated, see module doc), assets (loads with their slot baseline
    as ``forecast_kw``) and community load."""
    res = [res_forecast(r, forecasts, start, end, degradation) for r in members if r.spec.kind in RES]
    assets = [_with_forecast(r, (load_kw(r, forecasts, baselines, start, end),)) for r in members]
    p50, high = community_load(vpp_id, forecasts, start, end)
    return ExportInputs(res, assets, p50, high)


def assets_for_slots(
    members: Iterable[RegisteredAsset],
    forecasts: ForecastBook,
    baselines: BaselineBook,
    slot_starts: Sequence[int],
    slot_ms: int,
    degradation: DegradationBook | None = None,
) -> list[Asset]:
    """The portfolio for a capability request: RES and loads carry their per-slot outlook as ``forecast_kw``
    (RES: the derated median, see :func:`res_forecast`)."""
    out = []
    for r in members:
        if r.spec.kind in RES:
            values = tuple(
                f.p50_kw * f.derate
                for f in (res_forecast(r, forecasts, s, s + slot_ms, degradation) for s in slot_starts)
            )
        elif r.spec.kind in LOADS:
            values = tuple(load_kw(r, forecasts, baselines, s, s + slot_ms) for s in slot_starts)
        else:
            values = None
        out.append(_with_forecast(r, values))
    return out


def _with_forecast(reg: RegisteredAsset, values: tuple[float, ...] | None) -> Asset:
    asset = reg.asset
    if values is None or asset.kind not in LOADS | RES:
        return asset
    return replace(asset, forecast_kw=values)
