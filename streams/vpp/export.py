"""Export capacity of the VPP for the next 30-minute trading window (HL-UC03 LL-UC03).

Community load is served first:
``export = sum RES forecast + sum dispatchable capacity + sum curtailable load - community load forecast`` (kW),
computed at the P50 and at the firm (P10) RES forecast; the firm case also takes the community load's upper
forecast when given. Dispatchable capacity of a generator: if it is on, ``min(p_max, current + ramp x lead)``;
if it is off, ``p_max`` when its start-up time fits in the lead time (else excluded, START_UP_TIME); generators
whose marginal cost is above the price forecast keep their current set point (excluded from extra capacity,
COST_ABOVE_PRICE). Curtailable loads give ``baseline x curtailable share``. ``offered_kw`` = the export at the
offer quantile (0.1 = firm P10, 0.5 = P50), clipped at 0; ``decision = HANDOVER`` (offered 0) when the price
forecast is below the threshold. ``supply_curve`` lists, per price level, the firm export available from that
price on (the price threshold of each capacity step). Money: integer micro-units per kWh. Power: kW.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams.vpp.assets import DISPATCHABLE, LOADS, Asset, ExclusionReason

SLOT_MS_30 = 30 * 60 * 1000


class Market(StrEnum):
    INTRADAY = "INTRADAY"
    IMBALANCE = "IMBALANCE"


class Decision(StrEnum):
    OFFER = "OFFER"
    HANDOVER = "HANDOVER"


@dataclass(frozen=True)
class ResForecast:
    """Forecast mean output of one RES asset over the slot, kW: median and firm (P10) values. ``derate``:
    multiplier from PV degradation (see ``derate_from_rd``), 1.0 = none; the VPP sets it only for PV output
    taken from the registry (nameplate), never for a forecast learnt from measured production
    (:mod:`streams.vpp.pv_degradation`)."""

    asset_id: str
    p50_kw: float
    p10_kw: float
    derate: float = 1.0


@dataclass(frozen=True)
class ExportRequest:
    vpp_id: str
    slot_start_ms: int
    evaluated_at_ms: int
    price_forecast_micro_per_kwh: int
    threshold_micro_per_kwh: int
    market: Market = Market.INTRADAY
    slot_minutes: int = 30
    offer_quantile: float = 0.1


@dataclass(frozen=True)
class ExportCapacity:
    """Result for one slot; all powers in kW (mean over the slot), money in micro-units per kWh."""

    vpp_id: str
    market: Market
    slot_start_ms: int
    slot_end_ms: int
    evaluated_at_ms: int
    export_p50_kw: float
    export_p10_kw: float
    offered_kw: float
    offer_quantile: float
    price_forecast_micro_per_kwh: int
    threshold_micro_per_kwh: int
    decision: Decision
    setpoints: tuple[tuple[str, float], ...]
    excluded: tuple[tuple[str, ExclusionReason], ...]
    supply_curve: tuple[tuple[int, float], ...]

    @property
    def event_id(self) -> str:
        return f"{self.vpp_id}/{self.market}/{self.slot_start_ms}/{self.evaluated_at_ms}"


def derate_from_rd(rd_pct_per_year: float, years_since_reference: float) -> float:
    """Output multiplier after ``years`` of degradation at ``Rd`` %/year (negative Rd = loss)."""
    return (1.0 + rd_pct_per_year / 100.0) ** years_since_reference


def next_slot_start(now_ms: int, lead_minutes: int = 60, slot_minutes: int = 30) -> int:
    """Start of the slot evaluated at ``now``: the slot beginning ``lead_minutes`` after the current slot start."""
    slot_ms = slot_minutes * 60_000
    return (now_ms // slot_ms) * slot_ms + lead_minutes * 60_000


def generator_capacity_kw(gen: Asset, lead_s: float) -> tuple[float, ExclusionReason | None]:
    """Output a generator can reach by the slot start (kW) and why it cannot, ignoring price."""
    if not gen.available:
        return 0.0, ExclusionReason.UNAVAILABLE
    if not gen.is_on:
        if gen.start_up_time_s > lead_s:
            return 0.0, ExclusionReason.START_UP_TIME
        return gen.p_max_kw, None
    if gen.ramp_kw_per_s is None:
        return gen.p_max_kw, None
    return min(gen.p_max_kw, gen.current_kw + gen.ramp_kw_per_s * lead_s), None


def evaluate_export(
    req: ExportRequest,
    res: list[ResForecast],
    assets: list[Asset],
    community_load_p50_kw: float,
    community_load_high_kw: float | None = None,
) -> ExportCapacity:
    """Export capacity for the slot ``[slot_start, slot_start + slot_minutes)``; see module doc."""
    lead_s = max(0.0, (req.slot_start_ms - req.evaluated_at_ms) / 1000.0)
    res_p50 = sum(r.p50_kw * r.derate for r in res)
    res_p10 = sum(r.p10_kw * r.derate for r in res)
    load_high = community_load_high_kw if community_load_high_kw is not None else community_load_p50_kw
    excluded: list[tuple[str, ExclusionReason]] = []
    setpoints: list[tuple[str, float]] = []
    steps: dict[int, float] = {}  # price level -> capacity that becomes economic from that price on
    firm_base = 0.0
    for a in assets:
        if a.kind in DISPATCHABLE:
            reachable, reason = generator_capacity_kw(a, lead_s)
            current = a.current_kw if a.is_on and a.available else 0.0
            if reason is not None:
                excluded.append((a.asset_id, reason))
                firm_base += current
                continue
            steps[a.marginal_cost_micro_per_kwh] = steps.get(a.marginal_cost_micro_per_kwh, 0.0) + (
                reachable - current
            )
            firm_base += current
            if a.marginal_cost_micro_per_kwh > req.price_forecast_micro_per_kwh:
                excluded.append((a.asset_id, ExclusionReason.COST_ABOVE_PRICE))
                if current:
                    setpoints.append((a.asset_id, current))
            else:
                setpoints.append((a.asset_id, reachable))
        elif a.kind in LOADS and a.available:
            shed = a.value_at(0) * a.curtailable_share
            firm_base += shed
            setpoints.append((a.asset_id, shed))
    economic = sum(kw for price, kw in steps.items() if price <= req.price_forecast_micro_per_kwh)
    export_p50 = res_p50 + firm_base + economic - community_load_p50_kw
    export_p10 = res_p10 + firm_base + economic - load_high
    at_quantile = export_p10 if req.offer_quantile <= 0.1 else export_p50
    decision = (
        Decision.HANDOVER
        if req.price_forecast_micro_per_kwh < req.threshold_micro_per_kwh
        else Decision.OFFER
    )
    offered = max(0.0, at_quantile) if decision == Decision.OFFER else 0.0
    curve: list[tuple[int, float]] = []
    cumulative = res_p10 + firm_base - load_high
    for price in sorted({0, *steps}):
        cumulative += steps.get(price, 0.0)
        curve.append((max(price, req.threshold_micro_per_kwh), round(max(0.0, cumulative), 6)))
    return ExportCapacity(
        vpp_id=req.vpp_id,
        market=req.market,
        slot_start_ms=req.slot_start_ms,
        slot_end_ms=req.slot_start_ms + req.slot_minutes * 60_000,
        evaluated_at_ms=req.evaluated_at_ms,
        export_p50_kw=round(export_p50, 6),
        export_p10_kw=round(export_p10, 6),
        offered_kw=round(offered, 6),
        offer_quantile=req.offer_quantile,
        price_forecast_micro_per_kwh=req.price_forecast_micro_per_kwh,
        threshold_micro_per_kwh=req.threshold_micro_per_kwh,
        decision=decision,
        setpoints=tuple(setpoints),
        excluded=tuple(excluded),
        supply_curve=_merge_curve(curve),
    )


def _merge_curve(curve: list[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """Keep the largest capacity per price level and drop steps that add nothing."""
    merged: dict[int, float] = {}
    for price, kw in curve:
        merged[price] = max(kw, merged.get(price, 0.0))
    out: list[tuple[int, float]] = []
    for price in sorted(merged):
        if not out or merged[price] > out[-1][1]:
            out.append((price, merged[price]))
    return tuple(out)
