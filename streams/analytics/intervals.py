"""Event-time 15-minute interval aggregation of meter readings into IntervalEnergy records.

:class:`IntervalAggregator` is a pure, engine-independent state machine (one per stream partition):

* ``process(measurement)`` takes a validated Measurement dict (avro/Measurement.avsc). Used quantities, phase
  TOTAL only: ``E_IMPORT``/``E_EXPORT`` cumulative registers (Wh) and ``P_ACTIVE`` net power (W, import
  positive). Per window the register method (``REGISTER_DELTA``) wins whenever register data covers it;
  otherwise power samples are integrated (``POWER_INTEGRATION``) by the platform's one rule,
  :mod:`streams.energy_integration` (trapezoid, gaps longer than ``max_gap_ms`` not integrated, edges cut by linear
  interpolation), the same rule flex verification settles delivered flexibility with.
* Windows are tumbling, aligned to UTC epoch multiples of ``interval_ms``. The watermark is
  ``max event time seen - allowed_lateness_ms`` (over all meters of the partition); a window ``[s, e)`` closes,
  and its record is emitted with version 1, once the watermark reaches ``e``.
* ``advance_to(clock_ms)`` is the timer path: it moves the watermark to ``clock_ms - allowed_lateness_ms``, so
  windows of a meter that went silent still close when no later event arrives.
* Data for an already closed window arriving within ``correction_horizon_ms`` after the window end settles it:
  the record is recomputed and re-emitted with ``version + 1`` (only if the result changed) once the meter has
  moved on (a reading of it at or after the window's end) or the ticks are ``settle_ms`` past the last tick
  before its last correcting reading, so a meter flushing buffered readings gives one correction per window, not
  one per reading. Older data is ``too_late``.
* Replaying a reading (same quantity and ts) never double counts: a reading at an existing ts replaces it.

All emitted dicts match avro/IntervalEnergy.avsc. ``snapshot``/``restore`` pickle the aggregator (the pipeline
benchmark reports its state size with it). The interval *stage* runs
:class:`~streams.analytics.interval_processor.IntervalProcessor` instead (the same rules from
:mod:`streams.analytics.interval_rules`, per-meter state in the runtime's partition store, no pickle); this class
serves benchmarks, evaluation and the reference of the stage tests.
"""

from __future__ import annotations

import heapq
import pickle
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.analytics.interval_rules import (
    POWER,
    REG_EXPORT,
    REG_IMPORT,
    USED_QUANTITIES,
    IntervalConfig,
    Outcome,
    counts,
    owner_of,
    settled,
    signature,
    versioned,
    window_fields,
)

_NO_END = 2**62  # settle every window

__all__ = [
    "POWER",
    "REG_EXPORT",
    "REG_IMPORT",
    "USED_QUANTITIES",
    "IntervalAggregator",
    "IntervalConfig",
    "Outcome",
]


@dataclass
class _Series:
    ts: list[int] = field(default_factory=list)
    vals: list[float] = field(default_factory=list)

    def put(self, t: int, v: float) -> tuple[bool, int | None, int | None]:
        """Insert or replace; returns (changed, previous ts, next ts)."""
        ts = self.ts
        if not ts or t > ts[-1]:
            prev = ts[-1] if ts else None
            ts.append(t)
            self.vals.append(v)
            return True, prev, None
        i = bisect_left(ts, t)
        if i < len(ts) and ts[i] == t:
            if self.vals[i] == v:
                return False, None, None
            self.vals[i] = v
        else:
            ts.insert(i, t)
            self.vals.insert(i, v)
        prev = ts[i - 1] if i > 0 else None
        nxt = ts[i + 1] if i + 1 < len(ts) else None
        return True, prev, nxt

    def prune_before(self, t: int) -> None:
        """Drop samples older than ``t`` but keep the last one before it (left end of a straddling segment)."""
        i = bisect_left(self.ts, t) - 1
        if i > 0:
            del self.ts[:i]
            del self.vals[:i]


@dataclass
class _Meter:
    device_id: str
    prosumer_id: str
    series: dict[str, _Series] = field(default_factory=dict)
    open: set[int] = field(default_factory=set)
    emitted: dict[int, tuple[int, tuple]] = field(
        default_factory=dict
    )  # window start -> (version, signature)
    settling: list[int] = field(default_factory=list)  # closed windows changed and not re-emitted yet


class IntervalAggregator:
    """Per-partition interval state machine; see the module docstring."""

    def __init__(self, cfg: IntervalConfig | None = None, now_ms: Callable[[], int] | None = None):
        self.cfg = cfg or IntervalConfig()
        self._now = now_ms or (lambda: int(time.time() * 1000))
        self.meters: dict[str, _Meter] = {}
        self.watermark: int = -(2**62)
        self.max_event_ts: int = -(2**62)
        self._heap: list[tuple[int, str, int]] = []  # (window end, device, window start) of open windows
        self.tick_ms: int = -(2**62)  # the latest advance_to clock
        self.settling: dict[
            str, int
        ] = {}  # meter -> tick_ms at its last reading that changed a closed window
        self.stats: dict[str, int] = {"accepted": 0, "duplicate": 0, "ignored": 0, "too_late": 0}

    # -- public API -------------------------------------------------------------------------------------
    def process(self, m: Mapping[str, Any]) -> Outcome:
        """Feed one validated Measurement; returns its status and any intervals it closed or corrected."""
        if not counts(m):
            self.stats["ignored"] += 1
            return Outcome("ignored", [])
        cfg = self.cfg
        t = int(m["ts"])
        w = t - t % cfg.interval_ms
        if w + cfg.interval_ms <= self.watermark - cfg.correction_horizon_ms:
            self.stats["too_late"] += 1
            return Outcome("too_late", [])
        dev = m["device_id"]
        meter = self.meters.get(dev)
        owner = owner_of(m)
        if meter is None:
            meter = self.meters[dev] = _Meter(dev, owner)
        elif owner != dev:
            meter.prosumer_id = owner
        q = m["quantity"]
        series = meter.series.get(q)
        if series is None:
            series = meter.series[q] = _Series()
        changed, prev, nxt = series.put(t, float(m["value"]))
        if not changed:
            self.stats["duplicate"] += 1
            return Outcome("duplicate", [])
        self.stats["accepted"] += 1
        lo = prev if prev is not None and t - prev <= cfg.max_gap_ms else t
        hi = nxt if nxt is not None and nxt - t <= cfg.max_gap_ms else t
        out: list[dict[str, Any]] = []
        iv = cfg.interval_ms
        first = lo - lo % iv
        if first == w and (hi - hi % iv) == w:  # fast path: one window
            self._touch(meter, w, out)
        else:
            for ws in range(first, hi - hi % iv + 1, iv):
                self._touch(meter, ws, out)
        if meter.settling:
            out.extend(self._settle(meter, t))
        if t > self.max_event_ts:
            self.max_event_ts = t
            out.extend(self._advance_watermark(t - cfg.allowed_lateness_ms))
        return Outcome("accepted", out)

    def advance_to(self, clock_ms: int) -> list[dict[str, Any]]:
        """Timer path: re-emit the settling windows of meters quiet for ``settle_ms``, then close every window
        that ``clock_ms - allowed_lateness_ms`` has passed."""
        out: list[dict[str, Any]] = []
        if clock_ms > self.tick_ms:
            self.tick_ms = clock_ms
            quiet_since = clock_ms - self.cfg.settle_ms
            for dev in sorted(d for d, touched in self.settling.items() if touched <= quiet_since):
                out.extend(self._settle(self.meters[dev], _NO_END))
        return out + self._advance_watermark(clock_ms - self.cfg.allowed_lateness_ms)

    def flush(self) -> list[dict[str, Any]]:
        """Close all open windows now (end of input, e.g. evaluation/replay of a file)."""
        out = []
        while self._heap:
            _, dev, ws = heapq.heappop(self._heap)
            meter = self.meters[dev]
            if ws in meter.open:
                meter.open.discard(ws)
                out.extend(self._emit(meter, ws))
        for dev in sorted(self.settling):
            out.extend(self._settle(self.meters[dev], _NO_END))
        return out

    def open_windows(self) -> int:
        return sum(len(m.open) for m in self.meters.values())

    def snapshot(self) -> bytes:
        """Serialised state (pickle) for a restart; the clock function is not included."""
        state = {k: v for k, v in self.__dict__.items() if k != "_now"}
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def restore(cls, blob: bytes, now_ms: Callable[[], int] | None = None) -> IntervalAggregator:
        agg = cls.__new__(cls)
        agg.__dict__.update(pickle.loads(blob))
        agg._now = now_ms or (lambda: int(time.time() * 1000))
        return agg

    # -- internals ---------------------------------------------------------------------------------------
    def _touch(self, meter: _Meter, ws: int, out: list[dict[str, Any]]) -> None:
        cfg = self.cfg
        we = ws + cfg.interval_ms
        if we > self.watermark:
            if ws not in meter.open:
                meter.open.add(ws)
                heapq.heappush(self._heap, (we, meter.device_id, ws))
        elif we > self.watermark - cfg.correction_horizon_ms:
            if ws not in meter.settling:
                insort(meter.settling, ws)
            self.settling[meter.device_id] = self.tick_ms

    def _settle(self, meter: _Meter, until: int) -> list[dict[str, Any]]:
        """Re-emit ``meter``'s settling windows that end at or before ``until`` (UTC epoch ms)."""
        due, meter.settling = settled(meter.settling, until, self.cfg.interval_ms)
        if not due:
            return []
        if not meter.settling:
            del self.settling[meter.device_id]
        return [rec for ws in due for rec in self._emit(meter, ws)]

    def _advance_watermark(self, wm: int) -> list[dict[str, Any]]:
        if wm <= self.watermark:
            return []
        self.watermark = wm
        out: list[dict[str, Any]] = []
        heap = self._heap
        closed: set[str] = set()
        while heap and heap[0][0] <= wm:
            _, dev, ws = heapq.heappop(heap)
            meter = self.meters[dev]
            if ws in meter.open:
                meter.open.discard(ws)
                out.extend(self._emit(meter, ws))
                closed.add(dev)
        for dev in closed:
            out.extend(self._prune(self.meters[dev]))
        return out

    def _prune(self, meter: _Meter) -> list[dict[str, Any]]:
        """Forget what is past the correction horizon; a settling window there is re-emitted first."""
        cfg = self.cfg
        horizon = self.watermark - cfg.correction_horizon_ms
        out = self._settle(meter, horizon)
        keep_from = horizon - cfg.interval_ms - cfg.max_gap_ms
        for s in meter.series.values():
            if s.ts and s.ts[0] < keep_from:
                s.prune_before(keep_from)
        if meter.emitted:
            for ws in [ws for ws in meter.emitted if ws + cfg.interval_ms <= horizon]:
                del meter.emitted[ws]
        return out

    def compute(self, meter: _Meter, ws: int) -> dict[str, Any] | None:
        """The IntervalEnergy fields (without version/ids) of one window, or None when it holds no data."""
        series = {q: (s.ts, s.vals) for q, s in meter.series.items()}
        return window_fields(self.cfg, meter.device_id, meter.prosumer_id, ws, series)

    def _emit(self, meter: _Meter, ws: int) -> list[dict[str, Any]]:
        rec = self.compute(meter, ws)
        if rec is None:
            return []
        sig = signature(rec)
        prev = meter.emitted.get(ws)
        if prev is not None and prev[1] == sig:
            return []
        version = prev[0] + 1 if prev is not None else 1
        meter.emitted[ws] = (version, sig)
        return [versioned(rec, version, self._now())]
