"""Event-time 15-minute interval energy per meter over a partition's key/value state (the interval stage's logic).

:class:`IntervalProcessor` takes validated Measurement dicts (avro/Measurement.avsc) and wall-clock times, and
returns IntervalEnergy dicts (avro/IntervalEnergy.avsc). It keeps nothing in memory between calls: everything
lives in the partition's :class:`~edream.runtime.contract.KeyValueState`, per meter and incrementally, laid out by
:mod:`streams.analytics.interval_store`. The rules are those of :mod:`streams.analytics.interval_rules`:

* windows are tumbling, aligned to UTC epoch multiples of ``interval_ms``; the partition's watermark is
  ``max accepted event time - allowed_lateness_ms``; a window ``[s, e)`` closes, and its record is emitted with
  version 1, once the watermark reaches ``e``;
* :meth:`IntervalProcessor.advance_to` is the wall-clock path: it moves the watermark to
  ``clock_ms - allowed_lateness_ms``, so the window of a meter that went silent closes once the wall clock is past
  its end plus the allowed lateness;
* data for a closed window arriving within ``correction_horizon_ms`` after the window end *settles* it: it is
  recomputed and re-emitted with ``version + 1`` (only when the result changed) once its meter has moved on (an
  accepted reading of that meter at or after the window's end) or once the ticks are ``settle_ms`` past the last
  tick before the last such reading, not at every reading: a meter flushing an hour of buffered readings after the
  wall clock closed their windows gives one record per window, not one per reading starting from an empty one;
  older data is ``too_late`` and changes nothing;
* a reading at an existing time replaces the old value; the same value again is a ``duplicate`` and changes
  nothing, so a replayed reading never double counts and a replay re-emits nothing.

Records, ids (``device/interval_start/version``) and versions are those of the in-memory
:class:`~streams.analytics.intervals.IntervalAggregator` for the same readings of one partition; the tests
compare the two.
"""

from __future__ import annotations

import time
from bisect import insort
from collections.abc import Callable, Mapping
from typing import Any

from edream.runtime.contract import KeyValueState
from streams.analytics.interval_rules import (
    IntervalConfig,
    Outcome,
    counts,
    owner_of,
    settled,
    signature,
    versioned,
    window_fields,
)
from streams.analytics.interval_store import MeterState, PartitionClock, SampleChunks

_NO_END = 2**62  # settle every window


class _Work:
    """One call's view of a partition: the clock and each meter are read once and written back once."""

    def __init__(self, state: KeyValueState, chunk_ms: int):
        self.state = state
        self.clock = PartitionClock.load(state)
        self.samples = SampleChunks(state, chunk_ms)
        self.meters: dict[str, MeterState] = {}
        self.dirty: set[str] = set()
        self.clock_dirty = False

    def meter(self, device_id: str) -> MeterState | None:
        m = self.meters.get(device_id)
        if m is None:
            m = MeterState.load(self.state, device_id)
            if m is not None:
                self.meters[device_id] = m
        return m

    def add(self, meter: MeterState) -> MeterState:
        self.meters[meter.device_id] = meter
        self.dirty.add(meter.device_id)
        return meter

    def save(self) -> None:
        for dev in self.dirty:
            self.meters[dev].save(self.state)
        if self.clock_dirty:
            self.clock.save(self.state)


class IntervalProcessor:
    """Interval energy of the meters of one partition; see the module docstring. ``now_ms``: the wall clock
    (UTC epoch ms) stamped as ``computed_at``. ``stats`` counts outcomes of this process (not state)."""

    def __init__(self, cfg: IntervalConfig | None = None, now_ms: Callable[[], int] | None = None):
        self.cfg = cfg or IntervalConfig()
        self._now = now_ms or (lambda: int(time.time() * 1000))
        self.stats: dict[str, int] = {"accepted": 0, "duplicate": 0, "ignored": 0, "too_late": 0}

    def process(self, m: Mapping[str, Any], state: KeyValueState) -> Outcome:
        """Feed one *validated* Measurement; returns its status and the intervals it closed or corrected. A
        reading that is ignored, a duplicate or too late writes nothing."""
        if not counts(m):
            self.stats["ignored"] += 1
            return Outcome("ignored", [])
        cfg, iv = self.cfg, self.cfg.interval_ms
        t = int(m["ts"])
        w = t - t % iv
        work = _Work(state, iv)
        if w + iv <= work.clock.watermark - cfg.correction_horizon_ms:
            self.stats["too_late"] += 1
            return Outcome("too_late", [])
        dev, owner = m["device_id"], owner_of(m)
        meter = work.meter(dev)
        if meter is None:
            meter = work.add(MeterState(dev, owner))
        elif owner != dev and meter.prosumer_id != owner:
            meter.prosumer_id = owner
            work.dirty.add(dev)
        n_chunks = len(meter.chunks.get(m["quantity"], ()))
        changed, prev, nxt = work.samples.put(meter, m["quantity"], t, float(m["value"]))
        if len(meter.chunks[m["quantity"]]) != n_chunks:
            work.dirty.add(dev)
        if not changed:
            work.save()
            self.stats["duplicate"] += 1
            return Outcome("duplicate", [])
        self.stats["accepted"] += 1
        lo = prev if prev is not None and t - prev <= cfg.max_gap_ms else t
        hi = nxt if nxt is not None and nxt - t <= cfg.max_gap_ms else t
        out: list[dict[str, Any]] = []
        for ws in range(lo - lo % iv, hi - hi % iv + 1, iv):
            self._touch(work, meter, ws, out)
        if meter.settling:
            out.extend(self._settle(work, meter, t))
        if t > work.clock.max_event_ts:
            work.clock.max_event_ts = t
            work.clock_dirty = True
            out.extend(self._advance(work, t - cfg.allowed_lateness_ms))
        work.save()
        return Outcome("accepted", out)

    def advance_to(self, clock_ms: int, state: KeyValueState) -> list[dict[str, Any]]:
        """Wall-clock path: re-emit the settling windows of meters quiet for ``settle_ms``, then close every
        window that ``clock_ms - allowed_lateness_ms`` has passed (``clock_ms``: UTC epoch ms). Idempotent: a tick
        not later than the latest changes nothing (every worker of the stage sends ticks)."""
        work = _Work(state, self.cfg.interval_ms)
        clock, quiet_since = work.clock, clock_ms - self.cfg.settle_ms
        out: list[dict[str, Any]] = []
        if clock_ms > clock.tick_ms:
            clock.tick_ms = clock_ms
            work.clock_dirty = True
            for dev in sorted(d for d, touched in clock.settling.items() if touched <= quiet_since):
                meter = work.meter(dev)
                if meter.touched <= quiet_since:
                    out.extend(self._settle(work, meter, _NO_END))
                else:
                    clock.settling[dev] = meter.touched
        out.extend(self._advance(work, clock_ms - self.cfg.allowed_lateness_ms))
        work.save()
        return out

    def open_windows(self, state: KeyValueState) -> dict[int, list[str]]:
        """Window end -> meters with that window open (inspection and tests)."""
        work = _Work(state, self.cfg.interval_ms)
        return {end: sorted(self._members(work, end)) for end in sorted(work.clock.open)}

    # -- internals ---------------------------------------------------------------------------------------
    def _touch(self, work: _Work, meter: MeterState, ws: int, out: list[dict[str, Any]]) -> None:
        cfg = self.cfg
        we = ws + cfg.interval_ms
        wm = work.clock.watermark
        if we > wm:
            if ws not in meter.open:
                meter.open[ws] = work.clock.open.get(we)
                work.clock.open[we] = meter.device_id
                work.dirty.add(meter.device_id)
                work.clock_dirty = True
        elif we > wm - cfg.correction_horizon_ms:
            if ws not in meter.settling:
                insort(meter.settling, ws)
            meter.touched = work.clock.tick_ms
            work.dirty.add(meter.device_id)
            # the partition key changes when a meter starts settling, not at every reading
            if meter.device_id not in work.clock.settling:
                work.clock.settling[meter.device_id] = meter.touched
                work.clock_dirty = True

    def _settle(self, work: _Work, meter: MeterState, until: int) -> list[dict[str, Any]]:
        """Re-emit ``meter``'s settling windows that end at or before ``until`` (UTC epoch ms)."""
        due, meter.settling = settled(meter.settling, until, self.cfg.interval_ms)
        if not due:
            return []
        if not meter.settling:
            del work.clock.settling[meter.device_id]
            work.clock_dirty = True
        work.dirty.add(meter.device_id)
        return [rec for ws in due for rec in self._emit(work, meter, ws)]

    def _members(self, work: _Work, end: int) -> list[str]:
        ws = end - self.cfg.interval_ms
        devs: list[str] = []
        dev = work.clock.open.get(end)
        while dev is not None:
            devs.append(dev)
            dev = work.meter(dev).open[ws]
        return devs

    def _advance(self, work: _Work, wm: int) -> list[dict[str, Any]]:
        clock = work.clock
        if wm <= clock.watermark:
            return []
        clock.watermark = wm
        work.clock_dirty = True
        out: list[dict[str, Any]] = []
        closed: set[str] = set()
        for end in sorted(e for e in clock.open if e <= wm):
            ws = end - self.cfg.interval_ms
            for dev in sorted(self._members(work, end)):  # the order of the in-memory aggregator's heap
                meter = work.meter(dev)
                del meter.open[ws]
                work.dirty.add(dev)
                out.extend(self._emit(work, meter, ws))
                closed.add(dev)
            del clock.open[end]
        for dev in closed:
            out.extend(self._prune(work, work.meter(dev)))
        return out

    def _prune(self, work: _Work, meter: MeterState) -> list[dict[str, Any]]:
        """Forget what is past the correction horizon; a settling window there is re-emitted first."""
        cfg = self.cfg
        horizon = work.clock.watermark - cfg.correction_horizon_ms
        out = self._settle(work, meter, horizon)
        work.samples.drop_before(meter, horizon - cfg.interval_ms - cfg.max_gap_ms)
        for ws in [ws for ws in meter.emitted if ws + cfg.interval_ms <= horizon]:
            del meter.emitted[ws]
        return out

    def _emit(self, work: _Work, meter: MeterState, ws: int) -> list[dict[str, Any]]:
        rec = window_fields(self.cfg, meter.device_id, meter.prosumer_id, ws, work.samples.around(meter, ws))
        if rec is None:
            return []
        sig = signature(rec)
        prev = meter.emitted.get(ws)
        if prev is not None and tuple(prev[1]) == sig:
            return []
        version = prev[0] + 1 if prev is not None else 1
        meter.emitted[ws] = [version, list(sig)]
        work.dirty.add(meter.device_id)
        return [versioned(rec, version, self._now())]
