"""Closed-loop DR verification engine (T40, LL-UC08) as a pure, event-time-driven class.

Fed the 5-second power readings of every prosumer (net consumption, kW, import positive, at UTC epoch ms), it tracks
each (order, prosumer, slot) allocation:

* delivered flexibility = baseline - actual (REDUCE) or actual - baseline (INCREASE), as a slot average (kW) =
  delivered energy (kWh) / slot length (h);
* actual energy is integrated by the platform's one rule, :mod:`streams.energy_integration` (the rule interval
  energy uses too, so a slot's actual energy equals the IntervalEnergy of the same readings): readings are
  instantaneous power, linear between consecutive readings (trapezoid); the segment from the last reading before
  the slot start (or after its end) is cut at the edge by linear interpolation; a segment longer than
  ``max_gap_ms`` is a gap. Time not covered by a segment (gaps, before the first reading, after the last one, and
  before an allocation was added mid-slot) counts as nothing delivered (actual = baseline): settlement pays only
  for measured delivery. A slot with no reading at all delivers nothing;
* a reading at an existing time replaces it, late and out-of-order readings are put in time order (until the slot's
  FINAL verdict; later ones change nothing);
* while the slot runs, delivery is projected to slot end assuming the latest reading persists; once the projection
  leaves the tolerance band for ``confirm_readings`` consecutive readings a PROJECTED deviation is emitted (and
  again whenever the projected verdict changes). With the default 2 this is the reading after the one that made
  the deviation evident;
* at slot close (event time: ``advance_to(watermark)``; ``on_reading`` advances the watermark to
  ``max event time - allowed_lateness_ms``) a FINAL verdict is emitted; the lateness lets the first reading after
  the slot end arrive, which closes the slot's last segment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.energy_integration import DEFAULT_MAX_GAP_MS, WindowIntegrator
from streams.flex.delivery import delivered_kwms
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


@dataclass(frozen=True, slots=True)
class ActualBand:
    """:func:`classify` expressed on a slot's actual net consumption energy (kW*ms), for the per-reading check:
    ``below``/``above`` are the verdicts of energies under ``lo_kwms``/over ``hi_kwms``, WITHIN in between."""

    lo_kwms: float
    hi_kwms: float
    below: Verdict
    above: Verdict

    @classmethod
    def of(
        cls, direction: Direction, baseline_kw: float, target_kw: float, tolerance: float, slot_ms: int
    ) -> ActualBand:
        short = direction.actual_kw(baseline_kw, target_kw * (1 - tolerance) - _EPS) * slot_ms
        over = direction.actual_kw(baseline_kw, target_kw * (1 + tolerance) + _EPS) * slot_ms
        if short <= over:  # INCREASE: less consumption is less delivery
            return cls(short, over, "SHORTFALL", "OVERDELIVERY")
        return cls(over, short, "OVERDELIVERY", "SHORTFALL")

    def verdict(self, actual_kwms: float) -> Verdict:
        if actual_kwms < self.lo_kwms:
            return self.below
        if actual_kwms > self.hi_kwms:
            return self.above
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
    energy: WindowIntegrator  # actual net consumption measured from ``energy.start`` (slot start or later)
    verdict: Verdict = "WITHIN"
    candidate: Verdict | None = None
    pending: int = 0
    grace_until: int = 0
    slot_ms: int = field(init=False)
    # slot time before the allocation was added mid-slot: not measured, nothing delivered
    unmeasured_head_ms: int = field(init=False)
    band: ActualBand = field(init=False)
    ignore_before: int = field(init=False)  # readings earlier than this cannot change the slot's energy

    def __post_init__(self) -> None:
        self.slot_ms = self.slot_end - self.slot_start
        self.unmeasured_head_ms = self.energy.start - self.slot_start
        self.ignore_before = self.energy.start - self.energy.max_gap_ms
        self.retarget(self.target_kw)

    def retarget(self, target_kw: float) -> None:
        self.target_kw = target_kw
        self.band = ActualBand.of(self.direction, self.baseline_kw, target_kw, self.tolerance, self.slot_ms)

    def delivered_kwms(self) -> float:
        """Flexibility delivered over the measured time so far, kW*ms (unmeasured time delivers nothing)."""
        return delivered_kwms(self.direction, self.baseline_kw, self.energy)

    def delivered_so_far_kw(self) -> float:
        """Slot-average delivery so far (over the elapsed part, up to the latest reading), kW."""
        elapsed_ms = self.energy.reach - self.slot_start
        return self.delivered_kwms() / elapsed_ms if elapsed_ms > 0 else 0.0

    def projected_kw(self) -> float:
        """Slot-average delivery projected to slot end with the latest reading held, kW (0 before a reading in the
        slot)."""
        e = self.energy
        if not e.ts or e.ts[-1] < e.start:
            return 0.0
        return self._projected_kw(e.ts[-1], e.kw[-1])

    def _projected_kw(self, last_ts: int, last_kw: float) -> float:
        actual_kw = self._projected_actual_kwms(last_ts, last_kw) / self.slot_ms
        return self.direction.delivered_kw(self.baseline_kw, actual_kw)

    def _projected_actual_kwms(self, last_ts: int, last_kw: float) -> float:
        """Actual net consumption over the slot, kW*ms, with the latest reading ``(last_ts, last_kw)`` held to slot
        end: measured energy, baseline over the unmeasured time so far (nothing delivered), then ``last_kw``."""
        e = self.energy
        held_ms = self.slot_end - last_ts if last_ts < self.slot_end else 0
        return e.net_kwms + self.baseline_kw * (e.uncovered_ms + self.unmeasured_head_ms) + last_kw * held_ms

    def final_kw(self) -> float:
        """Slot-average delivery of the closed slot, kW (delivered energy / slot length)."""
        return self.delivered_kwms() / self.slot_ms


Key = tuple[str, str, int]  # order_id, prosumer_id, slot_start


class VerificationEngine:
    """See module docstring. ``tolerances`` maps prosumer_id -> contract ``range`` (default ``default_tolerance``).

    grace_ms: after an order amendment changes a running allocation, deviations of that allocation are not
    evaluated for this long (the device needs time to follow the new set-point). max_gap_ms: longer spans between
    readings are gaps (nothing delivered); keep it equal to the intervals' ``IntervalConfig.max_gap_ms``.
    """

    def __init__(
        self,
        tolerances: Mapping[str, float] | None = None,
        default_tolerance: float = 0.1,
        confirm_readings: int = 2,
        allowed_lateness_ms: int = 10_000,
        grace_ms: int = 10_000,
        max_gap_ms: int = DEFAULT_MAX_GAP_MS,
    ) -> None:
        self.tolerances = tolerances if tolerances is not None else {}
        self.default_tolerance = default_tolerance
        self.confirm_readings = max(1, confirm_readings)
        self.allowed_lateness_ms = allowed_lateness_ms
        self.grace_ms = grace_ms
        self.max_gap_ms = max_gap_ms
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
            if self._tracks[key].energy.samples == 0:
                self._drop(key)
        for key, a in wanted.items():
            if key in self._finals:
                continue
            tr = self._tracks.get(key)
            if tr is None:
                slot_end = a.slot_start + order.slot_ms
                # added mid-slot: the time before now is not measured, so it delivered nothing (actual = baseline)
                since = min(max(now, a.slot_start), slot_end)
                tr = _Track(
                    order.order_id,
                    a.prosumer_id,
                    a.slot_start,
                    slot_end,
                    order.direction,
                    a.kw,
                    a.baseline_kw,
                    self.tolerances.get(a.prosumer_id, self.default_tolerance),
                    WindowIntegrator(since, slot_end, self.max_gap_ms),
                )
                if now > tr.slot_start:
                    tr.grace_until = now + self.grace_ms
                self._tracks[key] = tr
                self._by_prosumer.setdefault(a.prosumer_id, []).append(tr)
            elif abs(tr.target_kw - a.kw) > _EPS:
                tr.retarget(a.kw)
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
            if ts < tr.ignore_before or not tr.energy.add(ts, kw):  # e.g. orders' later slots
                continue
            if tr.slot_start <= ts < tr.slot_end and ts >= tr.grace_until:
                ev = self._check(tr, ts, kw)
                if ev:
                    out.append(ev)
        if ts > self._max_ts:
            self._max_ts = ts
            out.extend(self.advance_to(ts - self.allowed_lateness_ms))
        return out

    def _check(self, tr: _Track, ts: int, kw: float) -> DeviationEvent | None:
        """Verdict after the in-slot reading ``(ts, kw)``, projected from the latest reading."""
        e = tr.energy
        last_ts = e.ts[-1]
        if last_ts != ts:  # a late reading: the projection holds the latest one
            kw = e.kw[-1]
        now = tr.band.verdict(tr._projected_actual_kwms(last_ts, kw))
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
            round(tr._projected_kw(last_ts, kw), 6),
            tr.tolerance,
            now,
            tr.energy.samples,
        )

    def advance_to(self, watermark: int) -> list[DeviationEvent]:
        """Emit FINAL verdicts for every tracked slot ending at or before ``watermark`` (UTC epoch ms)."""
        done = [k for k, tr in self._tracks.items() if tr.slot_end <= watermark]
        out = []
        for key in sorted(done, key=lambda k: (self._tracks[k].slot_end, k)):
            tr = self._tracks[key]
            delivered = tr.final_kw()
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
                tr.energy.samples,
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

    # -- state --------------------------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """The engine's tracks, final verdicts and event-time watermark as JSON-ready values (the per-prosumer
        runtime stage keeps one engine per prosumer in its partition state); inverse of :meth:`restore_state`."""
        return {
            "max_ts": self._max_ts,
            "tracks": [_track_state(tr) for tr in self._tracks.values()],
            "finals": [vars(ev) for ev in self._finals.values()],
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        """Replace tracks, final verdicts and watermark with those of :meth:`export_state`."""
        self._tracks, self._by_prosumer, self._finals = {}, {}, {}
        self._max_ts = int(state["max_ts"])
        for t in state["tracks"]:
            tr = _track_from_state(t)
            self._tracks[(tr.order_id, tr.prosumer_id, tr.slot_start)] = tr
            self._by_prosumer.setdefault(tr.prosumer_id, []).append(tr)
        for f in state["finals"]:
            ev = DeviationEvent(**f)
            self._finals[(ev.order_id, ev.prosumer_id, ev.slot_start)] = ev

    # -- queries ------------------------------------------------------------------------------------------
    def projection(self, order_id: str, prosumer_id: str, slot_start: int) -> float | None:
        tr = self._tracks.get((order_id, prosumer_id, slot_start))
        return None if tr is None else tr.projected_kw()

    def delivered_avg_kw(self, prosumer_id: str, slot_start: int) -> float:
        """Flexibility delivered so far by ``prosumer_id`` in the slot, as energy / full slot length (kW), summed
        over its running allocations."""
        return sum(
            tr.delivered_kwms() / tr.slot_ms
            for tr in self._by_prosumer.get(prosumer_id, ())
            if tr.slot_start == slot_start
        )

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
                        "readings": tr.energy.samples,
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


def _track_state(tr: _Track) -> dict[str, Any]:
    e = tr.energy
    return {
        "order_id": tr.order_id,
        "prosumer_id": tr.prosumer_id,
        "slot_start": tr.slot_start,
        "slot_end": tr.slot_end,
        "direction": str(tr.direction),
        "target_kw": tr.target_kw,
        "baseline_kw": tr.baseline_kw,
        "tolerance": tr.tolerance,
        "verdict": tr.verdict,
        "candidate": tr.candidate,
        "pending": tr.pending,
        "grace_until": tr.grace_until,
        "energy": [e.start, e.end, e.max_gap_ms, e.ts, e.kw, e.net_kwms, e.uncovered_ms],
    }


def _track_from_state(t: dict[str, Any]) -> _Track:
    start, end, gap, ts, kw, net, uncovered = t["energy"]
    energy = WindowIntegrator(start, end, gap)
    energy.ts, energy.kw, energy.net_kwms, energy.uncovered_ms = list(ts), list(kw), net, uncovered
    tr = _Track(
        t["order_id"],
        t["prosumer_id"],
        t["slot_start"],
        t["slot_end"],
        Direction(t["direction"]),
        t["target_kw"],
        t["baseline_kw"],
        t["tolerance"],
        energy,
    )
    tr.verdict, tr.candidate, tr.pending, tr.grace_until = (
        t["verdict"],
        t["candidate"],
        t["pending"],
        t["grace_until"],
    )
    return tr
