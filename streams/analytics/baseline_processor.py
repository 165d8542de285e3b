"""The baseline stage on the runtime: intervals and flexibility allocations in, ``baseline.15m.v1`` out, per prosumer.

State is per prosumer (:mod:`streams.analytics.baseline_state`). Intervals are re-keyed to their ``prosumer_id``
(:func:`interval_prosumer_key`, through the runtime's repartition topic, so they are co-partitioned whatever
partitioner their producer used). Event days come from ``flex.allocations.v1``: the area desk's share of each
order revision per prosumer (key ``prosumer_id``, produced by the runtime like the repartition topics, so already
on the prosumer's partition), sent for a new order to every prosumer of it and for an amendment only to the
prosumers whose share changed. Reading whole orders instead, re-keyed to every allocated prosumer, decoded an
order of 1,250 prosumers 1,250 times per revision: the stage used half a core and still lagged in the e2e bench.

Event time is the prosumer's own: its watermark is the latest valid ``interval_end`` (UTC epoch ms) of its
intervals. When an interval moves it into a new UTC day D (or on the prosumer's first interval), the 96
day-ahead baselines of day D+1 are issued (version 1); when it moves into a new 15-min slot s, the adjusted
baseline of slot ``s + adjust_lead_slots`` (version 2). ``computed_at`` is the watermark, so a replay after a
crash re-emits identical records (id ``prosumer/isp_start/version``) and the sink collapses them. For one
prosumer this is exactly what the former StatefulLoop stage emitted (its processor is the reference of the
tests: ``tests/unit/analytics/baseline_stream_reference.py``); that stage moved every prosumer on one global
watermark, so its output depended on how prosumers' records interleaved (and a prosumer lagging behind the
others got nothing), which no partitioned stage can reproduce.

Every record is validated (:mod:`streams.validation.interval`, :mod:`streams.validation.flex_order`) against
the wall clock before it changes anything; an invalid or undecodable record raises, so the runtime dead-letters
it with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import Serde
from streams.analytics import baseline_lookback as lookback
from streams.analytics.baseline_state import ProsumerMeta, ProsumerState
from streams.analytics.baselines import DAY_MS, RECOMMENDED, SLOT_MS, BaselineConfig
from streams.validation.fields import Checker, InvalidRecord
from streams.validation.flex_order import check_flex_allocation
from streams.validation.interval import check_interval
from streams.validation.limits import Limits

#: Canonical topic names of the stage (the loaded topology may add a suffix: ``edream.topology.topic_names``).
INTERVAL_TOPIC = "meter.intervals.15m.v1"
ALLOCATIONS_TOPIC = "flex.allocations.v1"
BASELINE_TOPIC = "baseline.15m.v1"


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def decode_as(serde: Serde, value: bytes, topic: str, contract: str) -> dict[str, Any]:
    """The record of ``value``; raises (DecodeError or ValueError) when it is not a ``contract`` record."""
    name, rec = serde.decode(value, topic)
    if name != contract:
        raise ValueError(f"expected {contract} on {topic}, got {name}")
    return rec


def interval_prosumer_key(key: bytes | None, value: bytes) -> list[bytes]:
    """Re-key of ``meter.intervals.15m.v1``: an interval -> its message key, the prosumer id (the value is not
    decoded: the stage checks that key against the record's ``prosumer_id`` and dead-letters a mismatch).

    The topic is keyed by prosumer already, but by whichever partitioner its producer used; the allocations are
    produced by the runtime (murmur2, Quix's producer), like this re-key's repartition topic, so both inputs of a
    prosumer meet on one partition whatever produced the intervals. Raises on a missing or malformed key (the
    runtime then dead-letters the record with the reason)."""
    c = Checker()
    if not c.identifier("message key", key.decode("utf-8", "replace") if key else None):
        raise InvalidRecord("IntervalEnergy", c.errors)
    return [key]


class BaselineProcessor:
    """StageProcessor of the ``baselines`` stage (see the module docstring)."""

    def __init__(
        self,
        serde: Serde,
        *,
        intervals_topic: str = INTERVAL_TOPIC,
        allocations_topic: str = ALLOCATIONS_TOPIC,
        baseline_topic: str = BASELINE_TOPIC,
        cfg: BaselineConfig = RECOMMENDED,
        limits: Limits | None = None,
        now_ms: Callable[[], int] = _wall_clock_ms,
    ):
        self.serde, self.cfg, self.limits, self.now_ms = serde, cfg, limits or Limits(), now_ms
        self.intervals_topic, self.allocations_topic, self.baseline_topic = (
            intervals_topic,
            allocations_topic,
            baseline_topic,
        )

    def on_record(self, record: Record, state: KeyValueState) -> Iterable[Emit]:
        if record.topic == self.intervals_topic:
            return self._interval(record, state)
        if record.topic == self.allocations_topic:
            self._allocation(record, state)
            return []
        raise ValueError(f"the baselines stage does not read {record.topic}")

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> Iterable[Emit]:
        return []  # baselines follow the prosumers' event time

    # -- flexibility allocations: event days ------------------------------------------------------------------
    def _allocation(self, record: Record, state: KeyValueState) -> None:
        """The days (UTC day numbers) of the prosumer's allocated slots become event days; a cancelled order's
        allocation or a release (no slots) marks none. Days once marked stay marked."""
        alloc = decode_as(self.serde, record.value, record.topic, "FlexAllocation")
        errors = check_flex_allocation(alloc, self.now_ms(), self.limits)
        if errors:
            raise InvalidRecord("FlexAllocation", errors)
        prosumer = alloc["prosumer_id"]
        if record.key != prosumer.encode():
            raise ValueError(f"record key {record.key!r} is not the allocation's prosumer_id {prosumer!r}")
        if alloc["status"] == "CANCELLED":
            return
        days = {s["slot_start"] // DAY_MS for s in alloc["slots"]}
        store = ProsumerState(state, prosumer)
        meta = store.meta()
        added = [d for d in sorted(days) if meta.add_event_day(d)]
        if added:
            store.save_meta(meta)

    # -- intervals: load history, event time, issuing ----------------------------------------------------------
    def _interval(self, record: Record, state: KeyValueState) -> list[Emit]:
        rec = decode_as(self.serde, record.value, record.topic, "IntervalEnergy")
        errors = check_interval(rec, self.now_ms(), self.limits)
        if errors:
            raise InvalidRecord("IntervalEnergy", errors)
        prosumer = rec["prosumer_id"]
        if record.key != prosumer.encode():
            raise ValueError(f"record key {record.key!r} is not the interval's prosumer_id {prosumer!r}")
        store = ProsumerState(state, prosumer)
        meta = store.meta()
        changed = self._store_reading(store, meta, rec)
        end, old = rec["interval_end"], meta.wm
        if old is not None and end <= old:  # a correction or a late interval: history only
            if changed:
                store.save_meta(meta)
            return []
        meta.wm = end
        out = self._issue(store, meta, old, end)
        store.save_meta(meta)
        return out

    def _store_reading(self, store: ProsumerState, meta: ProsumerMeta, rec: dict[str, Any]) -> bool:
        """Merge the interval into its day's readings; True when the meta (days) changed."""
        if rec["completeness"] <= 0:
            return False
        start = rec["interval_start"]
        day = start // DAY_MS
        slots = store.readings(day)
        i = (start % DAY_MS) // SLOT_MS
        slot = slots[i] if slots[i] is not None else {}
        if lookback.merge_reading(slot, rec["device_id"], rec["version"], rec["avg_kw"]):
            slots[i] = slot
            store.save_readings(day, slots)
        return meta.add_day(day)

    def _issue(self, store: ProsumerState, meta: ProsumerMeta, old: int | None, wm: int) -> list[Emit]:
        """Baselines due when the prosumer's event time moves from ``old`` to ``wm`` (UTC epoch ms)."""
        p, cfg, recs = store.prosumer_id, self.cfg, []
        if old is None or wm // DAY_MS > old // DAY_MS:
            day = wm // DAY_MS + 1
            recs += lookback.day_ahead(p, self._rows(store, meta, day), meta.events, day, cfg, wm)
            self._prune(store, meta, lookback.prune_before_day(wm, cfg))
        if old is None or wm // SLOT_MS > old // SLOT_MS:
            slot = (wm // SLOT_MS + cfg.adjust_lead_slots) * SLOT_MS
            day = slot // DAY_MS
            rec = lookback.slot_ahead(p, self._rows(store, meta, day), meta.events, slot, cfg, wm)
            if rec is not None:
                recs.append(rec)
        if not recs:
            return []
        topic, key = self.baseline_topic, p.encode()
        return [Emit(topic, key, v) for v in self.serde.encode_many("Baseline", recs, topic)]

    def _rows(self, store: ProsumerState, meta: ProsumerMeta, day: int) -> dict[int, np.ndarray]:
        first = lookback.first_lookback_day(day, self.cfg)
        return store.rows(d for d in meta.days if first <= d <= day)

    @staticmethod
    def _prune(store: ProsumerState, meta: ProsumerMeta, before_day: int) -> None:
        """Forget readings and event days before UTC day number ``before_day`` (no look-back reaches them)."""
        for day in meta.days:
            if day < before_day:
                store.drop_day(day)
        meta.days = [d for d in meta.days if d >= before_day]
        meta.events = [d for d in meta.events if d >= before_day]
