"""Portfolio assets and reserve/frequency service specifications (inputs of the VPP optimisers).

Power in kW (positive = generation / export for generators, BESS discharge and RES; consumption for loads),
energy in kWh, times in seconds, money in integer micro-units of currency per kWh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Direction(StrEnum):
    UP = "UP"  # more generation or less consumption
    DOWN = "DOWN"  # less generation or more consumption


class AssetKind(StrEnum):
    GENERATOR = "GENERATOR"  # dispatchable: diesel, CHP, small hydro, biomass ...
    BESS = "BESS"
    CURTAILABLE_LOAD = "CURTAILABLE_LOAD"
    EVSE = "EVSE"
    PV = "PV"
    WIND = "WIND"


DISPATCHABLE = {AssetKind.GENERATOR}
LOADS = {AssetKind.CURTAILABLE_LOAD, AssetKind.EVSE}
RES = {AssetKind.PV, AssetKind.WIND}


class ExclusionReason(StrEnum):
    RESPONSE_TIME = "RESPONSE_TIME"
    DIRECTION = "DIRECTION"
    ENERGY = "ENERGY"
    UNAVAILABLE = "UNAVAILABLE"
    START_UP_TIME = "START_UP_TIME"
    COST_ABOVE_PRICE = "COST_ABOVE_PRICE"


@dataclass(frozen=True)
class Asset:
    """One asset of the portfolio.

    Generators: ``p_min_kw``/``p_max_kw`` output limits when on, ``current_kw`` set point now, ``is_on``,
    ``start_up_time_s`` (off -> p_min), ``ramp_kw_per_s`` (None = unlimited). BESS: ``p_max_kw`` charge/discharge
    limit, ``energy_kwh``, ``soc_pct``/``soc_min_pct``/``soc_max_pct``; ``current_kw`` > 0 discharging.
    Loads/EVSE: ``current_kw`` consumption now, ``p_max_kw`` maximum consumption, ``curtailable_share`` of the
    consumption that may be shed. PV/wind: ``current_kw`` output now, ``p_max_kw`` available output.
    ``forecast_kw``: optional per-slot value replacing ``current_kw`` (generator: none; RES: available output;
    loads: baseline consumption). ``uncertainty_min/max``: multiplicative band on forecast-based capacity
    (eDREAM ``uncertainty{min 0.8, max 1.2}``); 1.0 for firm assets.
    """

    asset_id: str
    kind: AssetKind
    p_max_kw: float
    p_min_kw: float = 0.0
    current_kw: float = 0.0
    is_on: bool = True
    response_time_s: float = 0.0
    start_up_time_s: float = 0.0
    ramp_kw_per_s: float | None = None
    directions: frozenset[Direction] = field(default_factory=lambda: frozenset({Direction.UP}))
    marginal_cost_micro_per_kwh: int = 0
    energy_kwh: float | None = None
    soc_pct: float | None = None
    soc_min_pct: float = 0.0
    soc_max_pct: float = 100.0
    curtailable_share: float = 1.0
    forecast_kw: tuple[float, ...] | None = None
    uncertainty_min: float = 1.0
    uncertainty_max: float = 1.0
    available: bool = True

    def value_at(self, slot: int) -> float:
        """Forecast for the slot if given (last value repeats), else ``current_kw``; kW."""
        if self.forecast_kw:
            return self.forecast_kw[min(slot, len(self.forecast_kw) - 1)]
        return self.current_kw

    def effective_response_s(self) -> float:
        """Seconds until the asset delivers: response time, plus start-up time for an off generator."""
        if self.kind in DISPATCHABLE and not self.is_on:
            return self.start_up_time_s + self.response_time_s
        return self.response_time_s


@dataclass(frozen=True)
class ServiceSpec:
    """A reserve/frequency product: direction, full delivery within ``max_response_s`` seconds, sustained for
    ``min_duration_min`` minutes, minimum offer ``min_size_kw``."""

    name: str
    direction: Direction
    max_response_s: float
    min_duration_min: float
    min_size_kw: float = 0.0


# GB-style presets (the seed gives no product parameters: HL-UC03 LL-UC02 gap; values from National Grid ESO
# product descriptions, rounded): enhanced (EFR) 1 s / 15 min, dynamic FFR 10 s / 30 min, static FFR 30 s /
# 30 min, STOR 20 min / 2 h with a 3 MW minimum.
SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec("EFR", Direction.UP, 1.0, 15.0),
        ServiceSpec("DYNAMIC_FFR", Direction.UP, 10.0, 30.0),
        ServiceSpec("STATIC_FFR", Direction.UP, 30.0, 30.0),
        ServiceSpec("STOR", Direction.UP, 1200.0, 120.0, 3000.0),
    )
}


def prequalify(asset: Asset, service: ServiceSpec) -> ExclusionReason | None:
    """Why the asset cannot serve this product at all, or None if it may (response time incl. start-up)."""
    if not asset.available:
        return ExclusionReason.UNAVAILABLE
    if service.direction not in asset.directions:
        return ExclusionReason.DIRECTION
    if asset.effective_response_s() > service.max_response_s:
        return ExclusionReason.RESPONSE_TIME
    if asset.kind == AssetKind.BESS and usable_energy_kwh(asset, service.direction) <= 0:
        return ExclusionReason.ENERGY
    return None


def usable_energy_kwh(asset: Asset, direction: Direction) -> float:
    """BESS energy available for the direction: UP (discharge) down to SOC_min, DOWN (charge) up to SOC_max."""
    if asset.energy_kwh is None or asset.soc_pct is None:
        return float("inf")
    if direction == Direction.UP:
        return max(0.0, (asset.soc_pct - asset.soc_min_pct) / 100.0 * asset.energy_kwh)
    return max(0.0, (asset.soc_max_pct - asset.soc_pct) / 100.0 * asset.energy_kwh)
