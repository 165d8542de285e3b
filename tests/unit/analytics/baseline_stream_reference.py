"""Test reference: the baseline stage's former processor (intervals and flexibility orders in,
``baseline.15m.v1`` out), kept for the stage's tests, which compare the runtime stage with it.

Wraps the pure :class:`~streams.analytics.baseline_service.BaselineService` on one global event time: the *watermark* is the latest ``interval_end``
seen (UTC epoch ms). When the watermark enters a new UTC day D (or on the first interval) every prosumer's
day-ahead baseline of day D+1 is issued (96 records, version 1). When it enters a new 15-min slot s, the adjusted
baseline of slot ``s + adjust_lead_slots`` is issued (version 2). Flexibility orders mark event days (excluded
from look-backs). ``computed_at`` is the watermark, so a replay re-emits identical records (id
``prosumer/isp_start/version``). Prosumers without enough history yield nothing.
"""

from __future__ import annotations

from typing import Any

from edream.serde import DecodeError, Serde
from streams.analytics.baseline_processor import BASELINE_TOPIC, INTERVAL_TOPIC
from streams.analytics.baseline_service import BaselineService
from streams.analytics.baselines import DAY_MS, SLOT_MS
from streams.outputs import Emit

ORDERS_TOPIC = "flex.orders.v1"  # the reference read whole orders

__all__ = ["BASELINE_TOPIC", "INTERVAL_TOPIC", "ORDERS_TOPIC", "BaselineStream"]


class BaselineStream:
    def __init__(
        self, serde: Serde, service: BaselineService | None = None, baseline_topic: str = BASELINE_TOPIC
    ):
        self.serde, self.baseline_topic = serde, baseline_topic
        self.watermark: int | None = None
        self.service = service or BaselineService()
        self.service._now = self._now

    def _now(self) -> int:
        return self.watermark or 0

    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]:
        try:
            name, rec = self.serde.decode(value, topic)
        except DecodeError:
            return []  # the sink agent dead-letters undecodable messages
        if name == "FlexOrder":
            self.service.observe_order(rec)
            return []
        if name != "IntervalEnergy":
            return []
        self.service.observe_interval(rec)
        return self.advance(int(rec["interval_end"]))

    def tick(self, now_ms: int) -> list[Emit]:
        return []  # baselines follow the data's event time

    def advance(self, watermark: int) -> list[Emit]:
        old = self.watermark
        if old is not None and watermark <= old:
            return []
        self.watermark = watermark
        svc, out = self.service, []
        if old is None or watermark // DAY_MS > old // DAY_MS:
            next_day = (watermark // DAY_MS + 1) * DAY_MS
            for p in svc.prosumers():
                out += [self._emit(r) for r in svc.day_ahead(p, next_day)]
            svc.prune(watermark - (svc.cfg.max_lookback_days + 2) * DAY_MS)
        if old is None or watermark // SLOT_MS > old // SLOT_MS:
            slot = (watermark // SLOT_MS + svc.cfg.adjust_lead_slots) * SLOT_MS
            for p in svc.prosumers():
                rec = svc.slot_ahead(p, slot)
                if rec is not None:
                    out.append(self._emit(rec))
        return out

    def _emit(self, rec: dict[str, Any]) -> Emit:
        topic = self.baseline_topic
        return topic, rec["prosumer_id"].encode(), self.serde.encode("Baseline", rec, topic)
