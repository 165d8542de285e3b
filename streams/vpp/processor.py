"""The VPP service, pure: asset registry, forecasts and baselines in; capability answers and export capacity out.

:class:`VppProcessor` holds the portfolio (:class:`~streams.vpp.registry.Portfolio`), the latest forecasts and
baselines (:mod:`streams.vpp.outlook`) and the export schedule; it never touches a broker or a clock, so the
agent, tests and tools drive it alike (``on_*`` methods return :class:`Out` events).

* **Capability**: a VppCapabilityRequest is answered against the VPP's active assets with their per-slot outlook
  (:func:`~streams.vpp.outlook.assets_for_slots`) through :func:`~streams.vpp.service.answer_capability_request`;
  the answer's id derives from the request id and ``computed_at`` is the request's ``requested_at``, and answered
  request ids are remembered, so a redelivered request is not answered twice.
* **Export**: :meth:`VppProcessor.on_tick` (the wall clock, UTC epoch ms) evaluates every VPP whose export is
  due (:func:`export_due`): when the clock enters a new ``export_every_minutes`` period (aligned to the UTC grid,
  so every :00 and :30 by default) or its portfolio changed since the last evaluation. Each evaluation emits one
  VppExportCapacity for the window starting at :func:`~streams.vpp.export.next_slot_start` (``lead_minutes``
  after the current slot start: the next 30-minute window by default) from the forecasts and baselines seen so
  far. Prices come from :class:`VppConfig` until a price-forecast topic exists.
* **PV degradation**: PvDegradation records (``vpp.pv.degradation.v1``) are kept per asset (latest
  ``computed_at``, :class:`~streams.vpp.pv_degradation.DegradationBook`); export and capability derate the
  nameplate-based output of PV assets without a covering forecast (:mod:`streams.vpp.pv_degradation`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from streams.outputs import Out
from streams.vpp.events import TOPIC_CAPABILITY, TOPIC_EXPORT, export_record, request_from_record
from streams.vpp.export import ExportRequest, Market, evaluate_export, next_slot_start
from streams.vpp.outlook import BASELINE_KEEP_MS, BaselineBook, ForecastBook, assets_for_slots, export_inputs
from streams.vpp.pv_degradation import DegradationBook
from streams.vpp.registry import Portfolio, RegisteredAsset
from streams.vpp.service import answer_capability_request

MINUTE_MS = 60_000


class VppConfig(BaseModel):
    """Export schedule and market parameters (``<EDREAM_DATA_DIR>/vpp.yaml`` when present).

    Minutes as named; prices in currency micro-units per kWh; ``offer_quantile`` 0.1 = firm (P10), 0.5 = median.
    Answered request ids are remembered: the last ``remember_requests`` (:class:`VppProcessor`), or for
    ``remember_requests_hours`` after the request's record time (the runtime stage, :mod:`streams.vpp.stage`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    export_every_minutes: float = Field(default=30.0, gt=0)
    slot_minutes: int = Field(default=30, gt=0)
    lead_minutes: int = Field(default=30, ge=0)
    market: Market = Market.INTRADAY
    offer_quantile: float = Field(default=0.1, gt=0, lt=1)
    price_forecast_micro_per_kwh: int = Field(default=150_000, ge=0)
    threshold_micro_per_kwh: int = Field(default=100_000, ge=0)
    remember_requests: int = Field(default=10_000, gt=0)
    #: how long the runtime stage remembers an answered request id (by the request's record time), hours
    remember_requests_hours: float = Field(default=168.0, gt=0)

    @classmethod
    def from_yaml(cls, path: Path | str) -> VppConfig:
        return cls.model_validate(yaml.safe_load(Path(path).read_text()) or {})

    @property
    def every_ms(self) -> int:
        return max(1, int(self.export_every_minutes * MINUTE_MS))


def load_config(data_dir: Path | str) -> VppConfig:
    path = Path(data_dir) / "vpp.yaml"
    return VppConfig.from_yaml(path) if path.exists() else VppConfig()


@dataclass(frozen=True)
class LastExport:
    """When a VPP was last evaluated (UTC epoch ms) and the portfolio version (its ``updated_at``) it saw."""

    evaluated_at: int
    portfolio_updated_at: int


def export_due(now_ms: int, every_ms: int, portfolio_updated_at: int, last: LastExport | None) -> bool:
    """True when the clock entered a new period since ``last`` or the portfolio changed after it."""
    if last is None:
        return True
    period_changed = now_ms // every_ms > last.evaluated_at // every_ms
    return period_changed or portfolio_updated_at > last.portfolio_updated_at


@dataclass
class VppProcessor:
    config: VppConfig = field(default_factory=VppConfig)
    portfolio: Portfolio = field(default_factory=Portfolio)
    forecasts: ForecastBook = field(default_factory=ForecastBook)
    baselines: BaselineBook = field(default_factory=BaselineBook)
    last_export: dict[str, LastExport] = field(default_factory=dict)
    answered: OrderedDict[str, None] = field(default_factory=OrderedDict)
    degradation: DegradationBook = field(default_factory=DegradationBook)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots written before a field existed resume with its default (e.g. ``degradation``)."""
        self.__dict__.update(state)
        self.__dict__.setdefault("degradation", DegradationBook())

    def on_asset(self, reg: RegisteredAsset) -> list[Out]:
        self.portfolio.upsert(reg)
        return []

    def on_forecast(self, rec: dict[str, Any]) -> list[Out]:
        self.forecasts.observe(rec)
        return []

    def on_baseline(self, rec: dict[str, Any]) -> list[Out]:
        self.baselines.observe(rec)
        return []

    def on_degradation(self, rec: dict[str, Any]) -> list[Out]:
        """Keep a PvDegradation record if it is the newest estimate of its asset."""
        self.degradation.observe(rec)
        return []

    def on_request(self, rec: dict[str, Any]) -> list[Out]:
        """Answer a VppCapabilityRequest record once (raises KeyError/ValueError on a malformed request)."""
        rid = str(rec["request_id"])
        if rid in self.answered:
            return []
        req = request_from_record(rec)
        slot_ms = req.slot_minutes * MINUTE_MS
        starts = [req.slot_start(t) for t in range(req.slots)]
        assets = assets_for_slots(
            self.portfolio.members(rec["vpp_id"]),
            self.forecasts,
            self.baselines,
            starts,
            slot_ms,
            self.degradation,
        )
        answer = answer_capability_request(rec, assets)
        self.answered[rid] = None
        while len(self.answered) > self.config.remember_requests:
            self.answered.popitem(last=False)
        return [Out(TOPIC_CAPABILITY, "VppCapability", answer["vpp_id"], answer)]

    def on_tick(self, now_ms: int) -> list[Out]:
        """Evaluate the export of every VPP that is due at ``now_ms`` (wall clock, UTC epoch ms)."""
        self.baselines.prune(now_ms - BASELINE_KEEP_MS)
        out = []
        every = self.config.every_ms
        for vpp_id in self.portfolio.vpp_ids():
            version = self.portfolio.updated_at(vpp_id)
            if not export_due(now_ms, every, version, self.last_export.get(vpp_id)):
                continue
            rec = self.evaluate_export(vpp_id, now_ms)
            self.last_export[vpp_id] = LastExport(now_ms, version)
            out.append(Out(TOPIC_EXPORT, "VppExportCapacity", vpp_id, rec))
        return out

    def evaluate_export(self, vpp_id: str, now_ms: int) -> dict[str, Any]:
        """The VppExportCapacity record of one VPP for the window after ``now_ms``."""
        cfg = self.config
        start = next_slot_start(now_ms, cfg.lead_minutes, cfg.slot_minutes)
        end = start + cfg.slot_minutes * MINUTE_MS
        inputs = export_inputs(
            vpp_id,
            self.portfolio.members(vpp_id),
            self.forecasts,
            self.baselines,
            start,
            end,
            self.degradation,
        )
        req = ExportRequest(
            vpp_id,
            start,
            now_ms,
            cfg.price_forecast_micro_per_kwh,
            cfg.threshold_micro_per_kwh,
            cfg.market,
            cfg.slot_minutes,
            cfg.offer_quantile,
        )
        result = evaluate_export(
            req, inputs.res, inputs.assets, inputs.community_load_p50_kw, inputs.community_load_high_kw
        )
        return export_record(result)
