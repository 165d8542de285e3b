"""Closed-loop DR verification engine (T40, LL-UC08) as a pure, event-time-driven class.

Fed the 5-second power readings of every prosumer (net consumption, kW, import positive), it tracks each
(order, prosumer, slot) allocation:

* delivered flexibility = baseline - actual (REDUCE) or actual - baseline (INCREASE), slot-average kW;
* a reading at ``ts`` is the average power over ``(previous reading, ts]`` (the first one over
  ``(slot_start, ts]``); readings at or before the previous one (duplicates, out of order) are ignored;
* while the slot runs, delivery is projected to slot end assuming the latest reading persists; once the projection
  leaves the tolerance band for ``confirm_readings`` consecutive readings a PROJECTED deviation is emitted (and
  again whenever the projected verdict changes). With the default 2 this is the reading after the one that made
  the deviation evident;
* at slot close (event time: ``advance_to(watermark)``; ``on_reading`` advances the watermark to
  ``max event time - allowed_lateness_ms``) a FINAL verdict is emitted. Missing readings are held forward; a
  slot with no reading at all counts as nothing delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.flex.ids import stable_id
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder

Verdict = Literal["WITHIN", "SHORTFALL", "OVERDELIVERY"]
Kind = Literal["PROJECTED", "FINAL"]
_EPS = 1e-9


def classify(target_kw: float, delivered_kw: float, tolerance: float) -> Verdict:
    """WITHIN when ``|delivered - target| <= tolerance * target``."""
    if delivered_kw < target_kw * (1 - tolerance) - _EPS:
        return "SHORTFALL"
    if delivered_kw > target_kw * (1 + tolerance) + _EPS:
        return "OVERDELIVERY"
    return "WITHIN"


@dataclass(frozen=True)
class DeviationEvent:
    """One verdict. ts: event time of the triggering reading (slot end for FINAL), UTC epoch ms; kW values are
    slot averages (projected to slot end for PROJECTED); tolerance is a fraction of target."""

    order_id: str
    prosumer_id: str
    slot_start: int
    ts: int
    kind: Kind
    target_kw: float
    delivered_kw: float
    tolerance: float
    verdict: Verdict
    readings: int = 0

    @property
    def event_id(self) -> str:
        return stable_id(
            "evt", "Deviation", self.order_id, self.prosumer_id, self.slot_start, self.kind, self.ts
        )

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "order_id": self.order_id,
            "prosumer_id": self.prosumer_id,
            "slot_start": self.slot_start,
            "ts": self.ts,
            "kind": self.kind,
            "target_kw": self.target_kw,
            "delivered_kw": self.delivered_kw,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


@dataclass(slots=True)
class _Track:
    order_id: str
    prosumer_id: str
    slot_start: int
    slot_end: int
    direction: Direction
    target_kw: float
    baseline_kw: float
    tolerance: float
    energy_kwms: float = 0.0  # actual net consumption integrated, kW*ms
    last_ts: int | None = None
    last_kw: float = 0.0
    readings: int = 0
    verdict: Verdict = "WITHIN"
    candidate: Verdict | None = None
    pending: int = 0
    grace_until: int = 0

    @property
    def length_ms(self) -> int:
        return self.slot_end - self.slot_start

    def delivered_so_far_kw(self) -> float:
        """Slot-average delivery so far (over the elapsed part), kW."""
        if self.last_ts is None:
            return 0.0
        actual = self.energy_kwms / (self.last_ts - self.slot_start)
        return self.direction.delivered_kw(self.baseline_kw, actual)

    def projected_kw(self) -> float:
        """Slot-average delivery projected to slot end with the last reading held, kW."""
        if self.last_ts is None:
            return 0.0
        actual = (self.energy_kwms + self.last_kw * (self.slot_end - self.last_ts)) / self.length_ms
        return self.direction.delivered_kw(self.baseline_kw, actual)


Key = tuple[str, str, int]  # order_id, prosumer_id, slot_start


class VerificationEngine:
    """See module docstring. ``tolerances`` maps prosumer_id -> contract ``range`` (default ``default_tolerance``).

    grace_ms: after an order amendment changes a running allocation, deviations of that allocation are not
    evaluated for this long (the device needs time to follow the new set-point).
    """

    def __init__(
        self,
        tolerances: Mapping[str, float] | None = None,
        default_tolerance: float = 0.1,
        confirm_readings: int = 2,
        allowed_lateness_ms: int = 10_000,
        grace_ms: int = 10_000,
    ) -> None:
        self.tolerances = tolerances if tolerances is not None else {}
        self.default_tolerance = default_tolerance
        self.confirm_readings = max(1, confirm_readings)
        self.allowed_lateness_ms = allowed_lateness_ms
        self.grace_ms = grace_ms
        self._tracks: dict[Key, _Track] = {}
        self._by_prosumer: dict[str, list[_Track]] = {}
        self._finals: dict[Key, DeviationEvent] = {}
        self._max_ts = 0
        self.late_readings = 0

    # -- orders -------------------------------------------------------------------------------------------
    def apply_order(self, order: FlexOrder, now: int | None = None) -> None:
        """Start tracking (or re-target, for a higher revision) the order's allocations.

        Allocations that disappeared are dropped if their slot has no reading yet; running ones are kept. An
        allocation added while its slot runs counts the time before ``now`` as nothing delivered.
        """
        now = self._max_ts if now is None else now
        wanted = {(order.order_id, a.prosumer_id, a.slot_start): a for a in order.allocations if a.kw > 0}
        for key in [k for k in self._tracks if k[0] == order.order_id and k not in wanted]:
            if self._tracks[key].readings == 0:
                self._drop(key)
        for key, a in wanted.items():
            if key in self._finals:
                continue
            tr = self._tracks.get(key)
            if tr is None:
                tr = _Track(
                    order.order_id,
                    a.prosumer_id,
                    a.slot_start,
                    a.slot_start + order.slot_ms,
                    order.direction,
                    a.kw,
                    a.baseline_kw,
                    self.tolerances.get(a.prosumer_id, self.default_tolerance),
                )
                if now > tr.slot_start:  # added mid-slot: before now it delivered nothing (actual = baseline)
                    tr.last_ts = min(now, tr.slot_end)
                    tr.last_kw = a.baseline_kw
                    tr.energy_kwms = a.baseline_kw * (tr.last_ts - tr.slot_start)
                    tr.grace_until = now + self.grace_ms
                self._tracks[key] = tr
                self._by_prosumer.setdefault(a.prosumer_id, []).append(tr)
            elif abs(tr.target_kw - a.kw) > _EPS:
                tr.target_kw = a.kw
                tr.pending, tr.candidate = 0, None
                tr.grace_until = now + self.grace_ms

    def _drop(self, key: Key) -> None:
        tr = self._tracks.pop(key)
        self._by_prosumer[tr.prosumer_id].remove(tr)

    # -- readings -----------------------------------------------------------------------------------------
    def on_reading(self, prosumer_id: str, ts: int, kw: float) -> list[DeviationEvent]:
        """Process one reading (net consumption kW at event time ``ts``); returns deviations it triggers."""
        out: list[DeviationEvent] = []
        for tr in self._by_prosumer.get(prosumer_id, ()):
            if not tr.slot_start < ts <= tr.slot_end:
                continue
            prev = tr.slot_start if tr.last_ts is None else tr.last_ts
            if ts <= prev:
                continue
            tr.energy_kwms += kw * (ts - prev)
            tr.last_ts, tr.last_kw = ts, kw
            tr.readings += 1
            if ts < tr.slot_end and ts >= tr.grace_until:
                ev = self._check(tr, ts)
                if ev:
                    out.append(ev)
        if ts > self._max_ts:
            self._max_ts = ts
            out.extend(self.advance_to(ts - self.allowed_lateness_ms))
        return out

    def _check(self, tr: _Track, ts: int) -> DeviationEvent | None:
        projected = tr.projected_kw()
        now = classify(tr.target_kw, projected, tr.tolerance)
        if now == tr.verdict:
            tr.pending, tr.candidate = 0, None
            return None
        if now != tr.candidate:
            tr.candidate, tr.pending = now, 0
        tr.pending += 1
        if tr.pending < self.confirm_readings:
            return None
        tr.verdict, tr.pending, tr.candidate = now, 0, None
        return DeviationEvent(
            tr.order_id,
            tr.prosumer_id,
            tr.slot_start,
            ts,
            "PROJECTED",
            tr.target_kw,
            round(projected, 6),
            tr.tolerance,
            now,
            tr.readings,
        )

    def advance_to(self, watermark: int) -> list[DeviationEvent]:
        """Emit FINAL verdicts for every tracked slot ending at or before ``watermark`` (UTC epoch ms)."""
        done = [k for k, tr in self._tracks.items() if tr.slot_end <= watermark]
        out = []
        for key in sorted(done, key=lambda k: (self._tracks[k].slot_end, k)):
            tr = self._tracks[key]
            if tr.last_ts is None:
                delivered = 0.0
            else:
                actual = (tr.energy_kwms + tr.last_kw * (tr.slot_end - tr.last_ts)) / tr.length_ms
                delivered = tr.direction.delivered_kw(tr.baseline_kw, actual)
            ev = DeviationEvent(
                tr.order_id,
                tr.prosumer_id,
                tr.slot_start,
                tr.slot_end,
                "FINAL",
                tr.target_kw,
                round(delivered, 6),
                tr.tolerance,
                classify(tr.target_kw, delivered, tr.tolerance),
                tr.readings,
            )
            self._finals[key] = ev
            self._drop(key)
            out.append(ev)
        return out

    def forget(self, order_id: str) -> None:
        """Drop every track and final verdict of ``order_id`` (a completed order leaving memory)."""
        for key in [k for k in self._tracks if k[0] == order_id]:
            self._drop(key)
        for key in [k for k in self._finals if k[0] == order_id]:
            del self._finals[key]

    # -- queries ------------------------------------------------------------------------------------------
    def projection(self, order_id: str, prosumer_id: str, slot_start: int) -> float | None:
        tr = self._tracks.get((order_id, prosumer_id, slot_start))
        return None if tr is None else tr.projected_kw()

    def delivered_avg_kw(self, prosumer_id: str, slot_start: int) -> float:
        """Flexibility delivered so far by ``prosumer_id`` in the slot, as energy / full slot length (kW), summed
        over its running allocations."""
        total = 0.0
        for tr in self._by_prosumer.get(prosumer_id, ()):
            if tr.slot_start == slot_start and tr.last_ts is not None:
                elapsed = tr.last_ts - tr.slot_start
                total += tr.direction.delivered_kw(tr.baseline_kw * elapsed, tr.energy_kwms) / tr.length_ms
        return total

    def delivery(self, order_id: str) -> list[dict[str, Any]]:
        """Per prosumer and slot: target, delivered so far (or final) kW, verdict, readings."""
        rows = []
        for (oid, pid, start), tr in self._tracks.items():
            if oid == order_id:
                rows.append(
                    {
                        "prosumer_id": pid,
                        "slot_start": start,
                        "target_kw": tr.target_kw,
                        "delivered_kw": round(tr.delivered_so_far_kw(), 6),
                        "verdict": tr.verdict,
                        "readings": tr.readings,
                        "final": False,
                    }
                )
        for (oid, pid, start), ev in self._finals.items():
            if oid == order_id:
                rows.append(
                    {
                        "prosumer_id": pid,
                        "slot_start": start,
                        "target_kw": ev.target_kw,
                        "delivered_kw": ev.delivered_kw,
                        "verdict": ev.verdict,
                        "readings": ev.readings,
                        "final": True,
                    }
                )
        return sorted(rows, key=lambda r: (r["slot_start"], r["prosumer_id"]))

    @property
    def open_tracks(self) -> int:
        return len(self._tracks)
