"""The VPP asset registry: ``VppAsset`` records (avro/VppAsset.avsc, compacted topic ``vpp.assets.v1``, key
``asset_id``), their validation, the YAML portfolio file operators enrol from, and the in-memory portfolio.

One validator (:class:`AssetSpec`) serves the YAML file, the CLI and decoded records, so a file entry and a
record are refused for the same reasons with the same field names. Units as in :mod:`streams.vpp.assets`: power
kW, energy kWh, times s, money integer currency micro-units per kWh, ``updated_at`` UTC epoch ms.

Portfolio file (``edream vpp asset load FILE``)::

    vpp_id: vpp-demo            # default portfolio of the entries
    assets:
      - asset_id: bess-1
        kind: BESS
        p_max_kw: 100
        energy_kwh: 200
        soc_pct: 60
        directions: [UP, DOWN]
      - {asset_id: pv-1, kind: PV, p_max_kw: 8, forecast_entity_id: prosumer-003}
      - {asset_id: pv-roof, kind: PV, p_max_kw: 8.5, dc_capacity_kw: 10, latitude_deg: 48.14,
         longitude_deg: 11.58, commissioned_at: 1609459200000, meter_device_id: pv-meter-7}

PV-only fields (all optional) feed the degradation estimate (``edream vpp degradation``) and the derating of
nameplate output (:mod:`streams.vpp.pv_degradation`): ``latitude_deg``/``longitude_deg`` (degrees, WGS84),
``tilt_deg`` (degrees from horizontal, default 30), ``azimuth_deg`` (degrees clockwise from north, default 180 =
south), ``dc_capacity_kw`` (kWp DC at STC, default ``p_max_kw``), ``commissioned_at`` (UTC epoch ms) and
``meter_device_id`` (the device whose 15-minute intervals measure this asset's output alone).

Errors name the file, the entry and the field: ``pf.yaml: assets[1] 'pv-1': field 'p_max_kw': Input should be
greater than or equal to 0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.vpp.assets import Asset, AssetKind, Direction

TOPIC_ASSETS = "vpp.assets.v1"


class RegistryError(ValueError):
    """An invalid registry entry; the message names where (file/entry or record) and the field."""


class AssetSpec(BaseModel):
    """One registry entry: the :class:`~streams.vpp.assets.Asset` fields plus ``vpp_id``, ``active`` and the
    forecast entity. Powers kW, energy kWh, times s, percentages 0..100, shares 0..1."""

    # finite numbers only; ids and names of bounded length (as streams.validation.fields.MAX_ID_LENGTH)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, str_max_length=128)

    asset_id: str = Field(min_length=1)
    vpp_id: str = Field(min_length=1)
    kind: AssetKind
    active: bool = True
    p_max_kw: float = Field(ge=0)
    p_min_kw: float = Field(default=0.0, ge=0)
    current_kw: float = 0.0
    is_on: bool = True
    response_time_s: float = Field(default=0.0, ge=0)
    start_up_time_s: float = Field(default=0.0, ge=0)
    ramp_kw_per_s: float | None = Field(default=None, gt=0)
    directions: tuple[Direction, ...] = (Direction.UP,)
    marginal_cost_micro_per_kwh: int = Field(default=0, ge=0)
    energy_kwh: float | None = Field(default=None, gt=0)
    soc_pct: float | None = Field(default=None, ge=0, le=100)
    soc_min_pct: float = Field(default=0.0, ge=0, le=100)
    soc_max_pct: float = Field(default=100.0, ge=0, le=100)
    curtailable_share: float = Field(default=1.0, ge=0, le=1)
    uncertainty_min: float = Field(default=1.0, ge=0, le=1)
    uncertainty_max: float = Field(default=1.0, ge=1)
    available: bool = True
    forecast_entity_id: str | None = None
    # PV only (degradation estimate and derating, see streams.vpp.pv_degradation): site in degrees (WGS84),
    # orientation in degrees (azimuth clockwise from north, 180 = south), DC rating kWp, commissioning UTC epoch ms.
    latitude_deg: float | None = Field(default=None, ge=-90, le=90)
    longitude_deg: float | None = Field(default=None, ge=-180, le=180)
    tilt_deg: float | None = Field(default=None, ge=0, le=90)
    azimuth_deg: float | None = Field(default=None, ge=0, le=360)
    dc_capacity_kw: float | None = Field(default=None, gt=0)
    commissioned_at: int | None = Field(default=None, ge=0)
    meter_device_id: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AssetSpec:
        if self.p_min_kw > self.p_max_kw:
            raise ValueError(f"p_min_kw {self.p_min_kw} is above p_max_kw {self.p_max_kw}")
        if self.soc_min_pct > self.soc_max_pct:
            raise ValueError(f"soc_min_pct {self.soc_min_pct} is above soc_max_pct {self.soc_max_pct}")
        if not self.directions:
            raise ValueError("directions must name at least one of UP, DOWN")
        if (self.latitude_deg is None) != (self.longitude_deg is None):
            raise ValueError("latitude_deg and longitude_deg go together (the PV site)")
        if self.kind == AssetKind.BESS and (self.energy_kwh is None) != (self.soc_pct is None):
            raise ValueError("a BESS needs both energy_kwh and soc_pct (or neither: unlimited energy)")
        return self

    def to_asset(self) -> Asset:
        return Asset(
            asset_id=self.asset_id,
            kind=self.kind,
            p_max_kw=self.p_max_kw,
            p_min_kw=self.p_min_kw,
            current_kw=self.current_kw,
            is_on=self.is_on,
            response_time_s=self.response_time_s,
            start_up_time_s=self.start_up_time_s,
            ramp_kw_per_s=self.ramp_kw_per_s,
            directions=frozenset(self.directions),
            marginal_cost_micro_per_kwh=self.marginal_cost_micro_per_kwh,
            energy_kwh=self.energy_kwh,
            soc_pct=self.soc_pct,
            soc_min_pct=self.soc_min_pct,
            soc_max_pct=self.soc_max_pct,
            curtailable_share=self.curtailable_share,
            uncertainty_min=self.uncertainty_min,
            uncertainty_max=self.uncertainty_max,
            available=self.available,
        )


_RECORD_ONLY = ("event_id", "updated_at")


def _field_of(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return loc or "(entry)"


def validate_spec(data: Mapping[str, Any], where: str) -> AssetSpec:
    """Validate one entry; raise :class:`RegistryError` ``"<where>: field '<f>': <why>"`` (first error)."""
    if not isinstance(data, Mapping):
        raise RegistryError(f"{where}: must be a mapping of asset fields, got {type(data).__name__}")
    try:
        return AssetSpec.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise RegistryError(f"{where}: field '{_field_of(err)}': {msg}{more}") from None


@dataclass(frozen=True)
class RegisteredAsset:
    """A validated registry entry at a point in time (``updated_at`` UTC epoch ms)."""

    spec: AssetSpec
    updated_at: int

    @property
    def asset_id(self) -> str:
        return self.spec.asset_id

    @property
    def vpp_id(self) -> str:
        return self.spec.vpp_id

    @property
    def asset(self) -> Asset:
        return self.spec.to_asset()


def asset_record(spec: AssetSpec, updated_at: int) -> dict[str, Any]:
    """The VppAsset Avro record of an entry (``event_id`` = ``asset_id/updated_at``)."""
    rec = spec.model_dump(mode="json")
    rec["directions"] = sorted(rec["directions"])
    return {"event_id": f"{spec.asset_id}/{updated_at}", **rec, "updated_at": int(updated_at)}


def registered_from_record(rec: Mapping[str, Any]) -> RegisteredAsset:
    """Validate a decoded VppAsset record; raise :class:`RegistryError` naming the asset and the field."""
    where = f"VppAsset '{rec.get('asset_id', '?')}'"
    if "updated_at" not in rec:
        raise RegistryError(f"{where}: field 'updated_at': missing")
    data = {k: v for k, v in rec.items() if k not in _RECORD_ONLY}
    return RegisteredAsset(validate_spec(data, where), int(rec["updated_at"]))


def load_portfolio_file(path: Path | str) -> list[AssetSpec]:
    """Validate a YAML (or JSON) portfolio file; errors name the file, the entry and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"assets": data}
    if not isinstance(data, dict) or not isinstance(data.get("assets"), list):
        raise RegistryError(
            f"{path}: top level must be a mapping with an 'assets' list (and optional vpp_id)"
        )
    unknown = set(data) - {"vpp_id", "assets"}
    if unknown:
        raise RegistryError(f"{path}: unknown top-level key(s) {sorted(unknown)} (expected vpp_id, assets)")
    default_vpp = data.get("vpp_id")
    specs: list[AssetSpec] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(data["assets"]):
        name = entry.get("asset_id", "?") if isinstance(entry, dict) else "?"
        where = f"{path}: assets[{i}] '{name}'"
        if isinstance(entry, dict) and default_vpp is not None:
            entry = {"vpp_id": default_vpp, **entry}
        spec = validate_spec(entry, where)
        if spec.asset_id in seen:
            raise RegistryError(f"{where}: field 'asset_id': duplicate of assets[{seen[spec.asset_id]}]")
        seen[spec.asset_id] = i
        specs.append(spec)
    return specs


class Portfolio:
    """Registry state rebuilt from the compacted topic: per asset the entry with the highest ``updated_at``
    (ties: the later one read); inactive entries leave the portfolio but keep their version, so an older
    record replayed after a removal cannot bring the asset back."""

    def __init__(self) -> None:
        self.entries: dict[str, RegisteredAsset] = {}

    def upsert(self, reg: RegisteredAsset) -> bool:
        """Apply an entry; False when an entry with a later ``updated_at`` is already known."""
        old = self.entries.get(reg.asset_id)
        if old is not None and old.updated_at > reg.updated_at:
            return False
        self.entries[reg.asset_id] = reg
        return True

    def vpp_ids(self) -> list[str]:
        return sorted({r.vpp_id for r in self.entries.values() if r.spec.active})

    def members(self, vpp_id: str) -> list[RegisteredAsset]:
        """Active entries of one portfolio, by asset id."""
        return sorted(
            (r for r in self.entries.values() if r.spec.active and r.vpp_id == vpp_id),
            key=lambda r: r.asset_id,
        )

    def assets(self, vpp_id: str) -> list[Asset]:
        return [r.asset for r in self.members(vpp_id)]

    def updated_at(self, vpp_id: str) -> int:
        """Latest change of the portfolio (including removals), UTC epoch ms; 0 if none."""
        return max((r.updated_at for r in self.entries.values() if r.vpp_id == vpp_id), default=0)


def specs_by_vpp(specs: Iterable[AssetSpec]) -> dict[str, list[AssetSpec]]:
    out: dict[str, list[AssetSpec]] = {}
    for s in specs:
        out.setdefault(s.vpp_id, []).append(s)
    return out
