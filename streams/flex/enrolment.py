"""Prosumer enrolment and flexibility contracts (HL-UC01 LL-UC01/02, T38/T40 verification inputs).

A :class:`ProsumerRecord` is the value of the compacted prosumer-registry topic (key ``prosumer_id``). Its
:class:`ContractTerms` (baseline method, tolerance ``range``, incentive/penalty ``multiplier``, rates,
availability, assets) are hashed over canonical bytes so an on-chain anchor can later prove them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from eth_utils import keccak

from streams.flex.model import ZERO, Capability, Direction, SlotOutlook
from streams.settlement.canonical import canonical_bytes

MS_PER_DAY = 86_400_000
MS_PER_MINUTE = 60_000
EV_MIN_CURRENT_A = 7  # spec T78/T82 setPower range 7..64 A
EV_MAX_CURRENT_A = 64
BASELINE_METHODS = ("X_OF_Y", "ROLLING_MEAN", "FORECAST", "METERED_BEFORE")


class EnrolmentError(ValueError):
    """An invalid enrolment record; the message names the field."""


def _hours(slot_minutes: int) -> float:
    return slot_minutes / 60.0


@dataclass(frozen=True)
class EvCharger:
    """EV charger controllable by current set-point, 7..64 A at ``voltage_v`` on 1 or 3 phases.

    nominal_current_a is the current the EV charges at when uncontrolled; reduction can stop charging (down flex
    = nominal power), increase can raise the set-point up to ``max_current_a``.

    device_id / target_id: where dispatch set-points go: the connector device id (connectors/config) and the
    addressed unit inside it (SpotLink ``chargeboxID``). Without them the charger is dispatched by the
    FlexOrder event alone (the home energy manager follows it).
    """

    asset_id: str
    max_current_a: int = 32
    nominal_current_a: int = 16
    phases: Literal[1, 3] = 1
    voltage_v: float = 230.0
    device_id: str | None = None
    target_id: str | None = None
    kind: Literal["EV_CHARGER"] = "EV_CHARGER"

    @property
    def controllable(self) -> bool:
        """Set-points can be sent through a connector."""
        return bool(self.device_id and self.target_id)

    def __post_init__(self) -> None:
        if self.phases not in (1, 3):
            raise EnrolmentError(f"{self.asset_id}: phases must be 1 or 3, got {self.phases}")
        if not EV_MIN_CURRENT_A <= self.nominal_current_a <= self.max_current_a <= EV_MAX_CURRENT_A:
            raise EnrolmentError(
                f"{self.asset_id}: need {EV_MIN_CURRENT_A} <= nominal_current_a <= max_current_a <= "
                f"{EV_MAX_CURRENT_A} A, got {self.nominal_current_a}/{self.max_current_a}"
            )

    def power_kw(self, current_a: float) -> float:
        """Charging power, kW, at ``current_a`` amperes per phase."""
        return current_a * self.voltage_v * self.phases / 1000.0

    def current_for_kw(self, kw: float) -> int:
        """Nearest allowed integer set-point, A, for ``kw`` (0 = stop charging; else clamped to 7..max)."""
        if kw <= 0:
            return 0
        amps = round(kw * 1000.0 / (self.voltage_v * self.phases))
        return max(EV_MIN_CURRENT_A, min(self.max_current_a, amps))

    def capability(self, outlook: SlotOutlook, slot_minutes: int) -> Capability:
        if not outlook.ev_connected:
            return ZERO
        nominal = self.power_kw(self.nominal_current_a)
        return Capability(down_kw=nominal, up_kw=self.power_kw(self.max_current_a) - nominal)


@dataclass(frozen=True)
class CurtailableLoad:
    """A load that can be switched off: down flex = its running power ``kw``; no up flex."""

    asset_id: str
    kw: float
    kind: Literal["CURTAILABLE_LOAD"] = "CURTAILABLE_LOAD"

    def __post_init__(self) -> None:
        if self.kw < 0:
            raise EnrolmentError(f"{self.asset_id}: kw must be >= 0")

    def capability(self, outlook: SlotOutlook, slot_minutes: int) -> Capability:
        return Capability(down_kw=self.kw, up_kw=0.0)


@dataclass(frozen=True)
class PvSystem:
    """PV array of ``kwp`` peak: curtailing it raises net consumption (up flex = forecast output)."""

    asset_id: str
    kwp: float
    kind: Literal["PV"] = "PV"

    def __post_init__(self) -> None:
        if self.kwp < 0:
            raise EnrolmentError(f"{self.asset_id}: kwp must be >= 0")

    def capability(self, outlook: SlotOutlook, slot_minutes: int) -> Capability:
        return Capability(down_kw=0.0, up_kw=max(0.0, self.kwp * outlook.pv_kw_per_kwp))


@dataclass(frozen=True)
class Battery:
    """Battery of ``capacity_kwh`` with inverter limit ``max_kw``; usable state of charge ``soc_min..soc_max``.

    Discharging reduces net consumption, charging increases it; each limited by the energy available within one
    slot (no inter-slot state-of-charge coupling: a documented simplification).
    """

    asset_id: str
    capacity_kwh: float
    max_kw: float
    soc_min: float = 0.1
    soc_max: float = 0.9
    kind: Literal["BATTERY"] = "BATTERY"

    def __post_init__(self) -> None:
        if self.capacity_kwh < 0 or self.max_kw < 0 or not 0 <= self.soc_min <= self.soc_max <= 1:
            raise EnrolmentError(
                f"{self.asset_id}: need capacity/max_kw >= 0 and 0 <= soc_min <= soc_max <= 1"
            )

    def capability(self, outlook: SlotOutlook, slot_minutes: int) -> Capability:
        h = _hours(slot_minutes)
        down = max(0.0, (outlook.battery_soc - self.soc_min) * self.capacity_kwh / h)
        up = max(0.0, (self.soc_max - outlook.battery_soc) * self.capacity_kwh / h)
        return Capability(down_kw=min(self.max_kw, down), up_kw=min(self.max_kw, up))


Asset = EvCharger | CurtailableLoad | PvSystem | Battery
_ASSET_KINDS: dict[str, type] = {
    "EV_CHARGER": EvCharger,
    "CURTAILABLE_LOAD": CurtailableLoad,
    "PV": PvSystem,
    "BATTERY": Battery,
}


@dataclass(frozen=True)
class AvailabilityWindow:
    """Daily recurring window in UTC minutes of day ``[start_minute, end_minute)`` (wraps past midnight when
    ``end_minute <= start_minute``), optionally limited to one direction."""

    start_minute: int
    end_minute: int
    direction: Direction | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.start_minute < 1440 and 0 <= self.end_minute <= 1440):
            raise EnrolmentError("availability minutes must be within 0..1440")

    def covers(self, slot_start_ms: int, slot_minutes: int, direction: Direction) -> bool:
        """Whole slot ``[slot_start, slot_start + slot_minutes)`` lies inside the window."""
        if self.direction is not None and self.direction is not direction:
            return False
        start = (slot_start_ms % MS_PER_DAY) // MS_PER_MINUTE
        end = start + slot_minutes
        ws, we = self.start_minute, self.end_minute
        if we <= ws:  # wraps midnight: [ws, 1440) + [0, we)
            we += 1440
            if start < ws:
                start, end = start + 1440, end + 1440
        return ws <= start and end <= we


@dataclass(frozen=True)
class ContractTerms:
    """The flexibility contract agreed at enrolment (LL-UC02); T40 inputs ``range`` and ``multiplier``.

    tolerance_range: tolerance band as a fraction of the ordered kW (0.1 = +/-10 %), fixed for the contract.
    multiplier: incentive/penalty multiplier (T40 ``multiplier``), > 0.
    incentive_micro_per_kwh / penalty_micro_per_kwh: rates, currency micro-units per kWh.
    valid_from / valid_until: UTC epoch ms.
    """

    aggregator_id: str
    baseline_method: str = "X_OF_Y"
    tolerance_range: float = 0.1
    multiplier: float = 1.0
    incentive_micro_per_kwh: int = 200_000
    penalty_micro_per_kwh: int = 300_000
    currency: str = "EUR"
    valid_from: int = 0
    valid_until: int = 4_102_444_800_000  # 2100-01-01

    def __post_init__(self) -> None:
        if self.baseline_method not in BASELINE_METHODS:
            raise EnrolmentError(f"baseline_method must be one of {BASELINE_METHODS}")
        if not 0 <= self.tolerance_range < 1:
            raise EnrolmentError("tolerance_range must be a fraction in [0, 1)")
        if self.multiplier <= 0:
            raise EnrolmentError("multiplier must be > 0")
        if self.incentive_micro_per_kwh < 0 or self.penalty_micro_per_kwh < 0:
            raise EnrolmentError("rates must be >= 0")


@dataclass(frozen=True)
class ProsumerRecord:
    """Registry value for one enrolled prosumer (compacted topic, key ``prosumer_id``).

    connection_kw: grid connection limit, kW; caps up flex at ``connection_kw - baseline`` and down flex at
    ``baseline + connection_kw`` (export limit).
    """

    prosumer_id: str
    area_id: str
    terms: ContractTerms
    assets: tuple[Asset, ...] = ()
    availability: tuple[AvailabilityWindow, ...] = (AvailabilityWindow(0, 1440),)
    connection_kw: float = 17.0
    active: bool = True

    def is_available(self, slot_start_ms: int, slot_minutes: int, direction: Direction) -> bool:
        t = self.terms
        if not self.active or not t.valid_from <= slot_start_ms < t.valid_until:
            return False
        return any(w.covers(slot_start_ms, slot_minutes, direction) for w in self.availability)

    def contract_document(self) -> dict[str, Any]:
        """The document that is hashed: identity + terms + assets + availability, integers only (canonical
        bytes refuse floats): fractions as ``*_ppm`` (parts per million), asset float fields as ``<name>_milli``
        (value x 1000), the connection limit in W. Unset optional asset fields (``None``) are left out, so adding
        an optional field does not change the hash of existing contracts."""
        t = self.terms
        return {
            "prosumer_id": self.prosumer_id,
            "area_id": self.area_id,
            "aggregator_id": t.aggregator_id,
            "baseline_method": t.baseline_method,
            "tolerance_ppm": ppm(t.tolerance_range),
            "multiplier_ppm": ppm(t.multiplier),
            "incentive_micro_per_kwh": t.incentive_micro_per_kwh,
            "penalty_micro_per_kwh": t.penalty_micro_per_kwh,
            "currency": t.currency,
            "valid_from": t.valid_from,
            "valid_until": t.valid_until,
            "connection_w": round(self.connection_kw * 1000),
            "availability": [
                {
                    "start_minute": w.start_minute,
                    "end_minute": w.end_minute,
                    "direction": None if w.direction is None else str(w.direction),
                }
                for w in self.availability
            ],
            "assets": [
                {
                    (f"{k}_milli" if isinstance(v, float) else k): (
                        round(v * 1000) if isinstance(v, float) else v
                    )
                    for k, v in asdict(a).items()
                    if v is not None
                }
                for a in self.assets
            ],
        }

    def terms_hash(self, algorithm: Literal["sha256", "keccak256"] = "sha256") -> str:
        """Hex digest of the canonical bytes of :meth:`contract_document`."""
        data = canonical_bytes(self.contract_document())
        return keccak(data).hex() if algorithm == "keccak256" else hashlib.sha256(data).hexdigest()


def ppm(fraction: float) -> int:
    """A dimensionless float as integer parts per million (for canonical, float-free encodings)."""
    return round(fraction * 1_000_000)


def to_dict(record: ProsumerRecord) -> dict[str, Any]:
    """JSON-ready dict (enums as strings) for the registry topic."""
    d = asdict(record)
    for w in d["availability"]:
        w["direction"] = None if w["direction"] is None else str(w["direction"])
    return d


def from_dict(d: dict[str, Any]) -> ProsumerRecord:
    """Inverse of :func:`to_dict`; raises EnrolmentError on unknown asset kinds or bad values."""
    try:
        assets = []
        for a in d.get("assets", []):
            kind = a.get("kind")
            if kind not in _ASSET_KINDS:
                raise EnrolmentError(f"unknown asset kind {kind!r}")
            assets.append(_ASSET_KINDS[kind](**a))
        windows = tuple(
            AvailabilityWindow(
                w["start_minute"], w["end_minute"], Direction(w["direction"]) if w.get("direction") else None
            )
            for w in d.get("availability", [{"start_minute": 0, "end_minute": 1440}])
        )
        return ProsumerRecord(
            prosumer_id=d["prosumer_id"],
            area_id=d["area_id"],
            terms=ContractTerms(**d["terms"]),
            assets=tuple(assets),
            availability=windows,
            connection_kw=float(d.get("connection_kw", 17.0)),
            active=bool(d.get("active", True)),
        )
    except (KeyError, TypeError) as exc:
        raise EnrolmentError(f"bad enrolment record: {exc}") from exc


def enrolment_event(record: ProsumerRecord, updated_at: int) -> dict[str, Any]:
    """FlexEnrolment.avsc record for the compacted registry topic (key ``prosumer_id``)."""
    from streams.flex.ids import stable_id

    digest = record.terms_hash()
    return {
        "event_id": stable_id("evt", "FlexEnrolment", record.prosumer_id, digest, record.active),
        "prosumer_id": record.prosumer_id,
        "area_id": record.area_id,
        "active": record.active,
        "record_json": json.dumps(to_dict(record), sort_keys=True, separators=(",", ":")),
        "terms_hash": digest,
        "terms_hash_keccak": record.terms_hash("keccak256"),
        "updated_at": updated_at,
    }


def record_from_event(event: dict[str, Any]) -> ProsumerRecord:
    """Inverse of :func:`enrolment_event`; raises EnrolmentError when the terms hash does not match."""
    try:
        record = from_dict(json.loads(event["record_json"]))
        digest = record.terms_hash()  # NaN or infinite numbers cannot be hashed (ValueError/OverflowError)
    except (ValueError, OverflowError, KeyError) as exc:
        raise EnrolmentError(f"bad enrolment event: {exc}") from exc
    if digest != event["terms_hash"]:
        raise EnrolmentError(f"{record.prosumer_id}: terms_hash does not match the record")
    return record


@dataclass
class Registry:
    """In-memory view of the compacted prosumer registry (last record per prosumer wins)."""

    records: dict[str, ProsumerRecord] = field(default_factory=dict)

    def upsert(self, record: ProsumerRecord) -> None:
        self.records[record.prosumer_id] = record

    def get(self, prosumer_id: str) -> ProsumerRecord | None:
        return self.records.get(prosumer_id)

    def in_area(self, area_id: str) -> list[ProsumerRecord]:
        """The area's active prosumers by id: offers and re-dispatch list (and break ties) in this order, not in
        the order the registry was read (a multi-partition registry topic is read in a different order by every
        worker)."""
        return sorted(
            (r for r in self.records.values() if r.area_id == area_id and r.active),
            key=lambda r: r.prosumer_id,
        )

    def __contains__(self, prosumer_id: object) -> bool:
        return prosumer_id in self.records
