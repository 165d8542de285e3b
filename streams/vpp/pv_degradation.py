"""PV degradation as an event: the estimate of one registered PV asset, its ``PvDegradation`` record, the latest
estimate per asset and how the VPP derates nameplate-based PV output with it.

* **History** (:class:`PvHistory`): production per 15-minute slot (slot start UTC epoch ms, mean W), from a CSV
  (``ts,power_w[,poa_wm2,temp_air_c]``, any cadence, resampled by :func:`to_slots`) or from the platform's
  ClickHouse ``intervals`` table of the asset's ``meter_device_id`` (export energy = production,
  :func:`history_from_interval_rows`).
* **Estimate** (:func:`estimate_asset`): expected output from pvlib/PVWatts for the registry's PV parameters
  (:func:`pv_system`): measured plane-of-array irradiance when the history has it (``YOY_IRRADIANCE``), else the
  clear-sky model on clear days (``YOY_CLEARSKY``); then :func:`streams.vpp.degradation.estimate_degradation`
  (outages, clipping, low light filtered; year-on-year median Rd with a bootstrap CI). Less than a year of
  history, or too few year-on-year pairs, raises :class:`InsufficientHistory` (nothing is published).
* **Record** (:func:`degradation_record`, ``avro/PvDegradation.avsc``, compacted topic ``vpp.pv.degradation.v1``,
  key ``asset_id``): event id ``asset_id/method/data_from/data_to``, so the same history gives the same event.
* **Use** (:class:`DegradationBook`, :func:`nameplate_derate`): the vpp agent keeps the latest estimate per asset
  (highest ``computed_at``) and multiplies the output of a PV asset **only where it comes from the registry**
  (no forecast entity, or no forecast covering the slot) by ``derate_from_rd(Rd, years since commissioned_at)``
  (years since the history's ``data_from`` when the commissioning date is unknown), clipped to ``[0, 1]``.
  Forecasts learnt online from the asset's measured production already contain the degradation, so they are
  never derated (no double counting). ``pr_latest`` is published for operators but not used as the multiplier:
  PR against a PVWatts DC rating also holds the system's constant losses (inverter, wiring, soiling) and, in
  clear-sky mode, the clear-sky model's bias, which the registry's kW values already reflect or do not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from streams.vpp.assets import AssetKind
from streams.vpp.degradation import DegradationConfig, DegradationEstimate, estimate_degradation
from streams.vpp.export import derate_from_rd
from streams.vpp.registry import AssetSpec

if TYPE_CHECKING:
    from streams.vpp.pv_model import PvSystem

TOPIC_DEGRADATION = "vpp.pv.degradation.v1"
SCHEMA = "PvDegradation"
SLOT_MS = 15 * 60_000
DAY_MS = 86_400_000
YEAR_MS = 365.25 * DAY_MS
#: history shorter than this (days) cannot give a year-on-year pair
MIN_SPAN_DAYS = 366
#: interval completeness below this share counts as missing production
MIN_COMPLETENESS = 0.9
DEFAULT_TILT_DEG = 30.0
DEFAULT_AZIMUTH_DEG = 180.0


class Method(StrEnum):
    YOY_CLEARSKY = "YOY_CLEARSKY"
    YOY_IRRADIANCE = "YOY_IRRADIANCE"


class InsufficientHistory(ValueError):
    """The history cannot give a year-on-year estimate; the message says why (too short, too few pairs)."""


@dataclass(frozen=True)
class PvHistory:
    """Production per 15-minute slot, sorted: slot starts (UTC epoch ms), mean power (W, NaN = missing), and
    optionally measured plane-of-array irradiance (W/m2) and air temperature (degC) per slot."""

    times_ms: np.ndarray
    power_w: np.ndarray
    poa_wm2: np.ndarray | None = None
    temp_air_c: np.ndarray | None = None

    @property
    def data_from(self) -> int:
        return int(self.times_ms[0])

    @property
    def data_to(self) -> int:
        """End of the last slot (exclusive), UTC epoch ms."""
        return int(self.times_ms[-1]) + SLOT_MS

    def span_days(self) -> float:
        return 0.0 if len(self.times_ms) == 0 else (self.data_to - self.data_from) / DAY_MS


def to_slots(
    times_ms: np.ndarray,
    power_w: np.ndarray,
    poa_wm2: np.ndarray | None = None,
    temp_air_c: np.ndarray | None = None,
) -> PvHistory:
    """Readings of any cadence -> 15-minute slot means (slot start = time floored to 15 min UTC); NaNs ignored,
    slots without a value stay NaN."""
    frame = pd.DataFrame(
        {
            "slot": (np.asarray(times_ms, dtype=np.int64) // SLOT_MS) * SLOT_MS,
            "p": np.asarray(power_w, dtype=float),
        }
    )
    if poa_wm2 is not None:
        frame["poa"] = np.asarray(poa_wm2, dtype=float)
    if temp_air_c is not None:
        frame["t"] = np.asarray(temp_air_c, dtype=float)
    g = frame.groupby("slot", sort=True).mean()
    return PvHistory(
        g.index.to_numpy(dtype=np.int64),
        g["p"].to_numpy(dtype=float),
        g["poa"].to_numpy(dtype=float) if "poa" in g else None,
        g["t"].to_numpy(dtype=float) if "t" in g else None,
    )


def history_sql(table: str) -> str:
    """Query of one meter's 15-minute intervals (parameter ``device``): start, end (UTC epoch ms), export Wh,
    completeness; the latest version per interval (FINAL)."""
    return (
        "SELECT toUnixTimestamp64Milli(interval_start), toUnixTimestamp64Milli(interval_end), export_wh, "
        f"completeness FROM {table} FINAL WHERE device_id = {{device:String}} ORDER BY interval_start"
    )


def history_from_interval_rows(rows: list[list[Any]] | list[tuple[Any, ...]]) -> PvHistory:
    """Rows of :func:`history_sql` -> production per slot: mean W = export Wh x 3,600,000 / interval ms; intervals
    less than ``MIN_COMPLETENESS`` covered count as missing (NaN)."""
    if not rows:
        return PvHistory(np.empty(0, dtype=np.int64), np.empty(0))
    arr = np.asarray([[float(v) for v in r] for r in rows])
    start, end, export_wh, completeness = arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3]
    power = export_wh * 3_600_000.0 / np.maximum(end - start, 1.0)
    power = np.where(completeness >= MIN_COMPLETENESS, power, np.nan)
    return to_slots(start, power)


def pv_system(spec: AssetSpec, need_site: bool = True) -> PvSystem:
    """The pvlib system of a registered PV asset: DC rating ``dc_capacity_kw`` (else ``p_max_kw``), AC limit
    ``p_max_kw`` (the clipping filter), tilt/azimuth (defaults 30 / 180 = south). ``need_site``: the clear-sky
    model needs ``latitude_deg``/``longitude_deg``; ValueError names what is missing."""
    from streams.vpp.pv_model import PvSystem  # pvlib is imported only where an estimate is made

    if spec.kind != AssetKind.PV:
        raise ValueError(f"asset {spec.asset_id!r} is {spec.kind}, not PV")
    if need_site and spec.latitude_deg is None:
        raise ValueError(
            f"asset {spec.asset_id!r} has no latitude_deg/longitude_deg: the clear-sky expected output needs "
            "the site (or give measured irradiance, poa_wm2, in the history)"
        )
    dc_kw = spec.dc_capacity_kw or spec.p_max_kw
    if dc_kw <= 0:
        raise ValueError(f"asset {spec.asset_id!r} has no DC rating (dc_capacity_kw or p_max_kw > 0)")
    return PvSystem(
        latitude=spec.latitude_deg or 0.0,
        longitude=spec.longitude_deg or 0.0,
        dc_capacity_w=dc_kw * 1000.0,
        tilt_deg=DEFAULT_TILT_DEG if spec.tilt_deg is None else spec.tilt_deg,
        azimuth_deg=DEFAULT_AZIMUTH_DEG if spec.azimuth_deg is None else spec.azimuth_deg,
        ac_limit_w=spec.p_max_kw * 1000.0 if spec.p_max_kw > 0 else None,
    )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def estimate_asset(
    spec: AssetSpec, history: PvHistory, cfg: DegradationConfig | None = None
) -> tuple[DegradationEstimate, Method]:
    """Rd of one PV asset from its history (see module doc); raises :class:`InsufficientHistory`, or ValueError
    when the registry lacks the PV parameters."""
    from streams.vpp.pv_model import dc_power_w, expected_clearsky_w

    method = Method.YOY_IRRADIANCE if history.poa_wm2 is not None else Method.YOY_CLEARSKY
    system = pv_system(spec, need_site=method == Method.YOY_CLEARSKY)
    days = history.span_days()
    if days < MIN_SPAN_DAYS:
        span = f"{_iso(history.data_from)} .. {_iso(history.data_to)}" if len(history.times_ms) else "no data"
        raise InsufficientHistory(
            f"asset {spec.asset_id!r}: the history covers {days:.0f} days ({span}); the year-on-year estimate "
            f"needs at least {MIN_SPAN_DAYS} days of production"
        )
    if method == Method.YOY_IRRADIANCE:
        temp = history.temp_air_c if history.temp_air_c is not None else 15.0
        expected = dc_power_w(system, np.nan_to_num(history.poa_wm2), temp)
        cfg = cfg or DegradationConfig()
    else:
        expected = expected_clearsky_w(system, history.times_ms)
        cfg = cfg or DegradationConfig(clear_sky=True)
    try:
        est = estimate_degradation(
            history.times_ms, history.power_w, expected, system.dc_capacity_w, system.ac_limit_w, cfg
        )
    except ValueError as exc:
        raise InsufficientHistory(f"asset {spec.asset_id!r}: {exc}") from None
    return est, method


def degradation_record(
    spec: AssetSpec,
    est: DegradationEstimate,
    method: Method,
    history: PvHistory,
    computed_at_ms: int,
) -> dict[str, Any]:
    """The PvDegradation record (avro/PvDegradation.avsc) of an estimate."""
    rec: dict[str, Any] = {
        "event_id": f"{spec.asset_id}/{method}/{history.data_from}/{history.data_to}",
        "asset_id": spec.asset_id,
        "vpp_id": spec.vpp_id,
    }
    d = asdict(est)
    for k in ("rd_pct_per_year", "ci_low", "ci_high", "confidence", "pr_latest"):
        rec[k] = round(float(d[k]), 6)
    for k in ("pairs", "days_used", "slots_used", "slots_total"):
        rec[k] = int(d[k])
    rec |= {
        "data_from": history.data_from,
        "data_to": history.data_to,
        "method": str(method),
        "dc_capacity_kw": float(spec.dc_capacity_kw or spec.p_max_kw),
        "computed_at": int(computed_at_ms),
    }
    return rec


@dataclass
class DegradationBook:
    """Latest PvDegradation record per asset id (highest ``computed_at``; ties: the later one read)."""

    latest: dict[str, dict[str, Any]] = field(default_factory=dict)

    def observe(self, rec: Mapping[str, Any]) -> bool:
        """Keep the record unless an estimate computed later is already known."""
        aid = str(rec["asset_id"])
        old = self.latest.get(aid)
        if old is not None and int(old["computed_at"]) > int(rec["computed_at"]):
            return False
        self.latest[aid] = dict(rec)
        return True

    def get(self, asset_id: str) -> dict[str, Any] | None:
        return self.latest.get(asset_id)


def nameplate_derate(rec: Mapping[str, Any], commissioned_at: int | None, at_ms: int) -> float:
    """Output multiplier at ``at_ms`` (UTC epoch ms) for a PV asset's nameplate-based output:
    ``(1 + Rd/100) ^ years`` with years since ``commissioned_at`` (else since the estimate's ``data_from``),
    clipped to ``[0, 1]`` (an improving PR never lifts output above the nameplate)."""
    reference = commissioned_at if commissioned_at is not None else int(rec["data_from"])
    years = max(0.0, (at_ms - reference) / YEAR_MS)
    return min(1.0, max(0.0, derate_from_rd(float(rec["rd_pct_per_year"]), years)))


def derate_for(spec: AssetSpec, book: DegradationBook | None, at_ms: int) -> float:
    """Nameplate derate of a registry entry at ``at_ms``; 1.0 for non-PV assets or without an estimate."""
    if book is None or spec.kind != AssetKind.PV:
        return 1.0
    rec = book.get(spec.asset_id)
    return 1.0 if rec is None else nameplate_derate(rec, spec.commissioned_at, at_ms)


INTERVALS_TOPIC = "meter.intervals.15m.v1"


def intervals_table(topology: Any) -> str | None:
    """ClickHouse table the topology's sinks fill from ``meter.intervals.15m.v1`` (None when not sunk)."""
    from edream.topology import topic_names

    topic = topic_names(topology).get(INTERVALS_TOPIC, INTERVALS_TOPIC)
    return next((s.table for s in topology.sinks if s.topic == topic), None)
