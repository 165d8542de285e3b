"""Energy from power samples: the platform's one integration rule, used for interval energy
(:mod:`streams.analytics.intervals`) and delivered flexibility (:mod:`streams.flex.verification`).

Units: power samples in **kW** (net power, import positive), times in **UTC epoch ms**, energies in **kWh**
(``*_wh`` properties give Wh).

The rule:

* two consecutive samples ``(t0, p0)``, ``(t1, p1)`` form a *segment*; power is taken as linear between them, so the
  segment's energy is the trapezoid ``(p0 + p1) / 2 * (t1 - t0)``;
* a segment longer than ``max_gap_ms`` is a *gap*: it contributes neither energy nor coverage (nothing is measured
  across it);
* a segment straddling a window edge is cut there by linear interpolation and only its part inside the window
  ``[start, end)`` counts, so neighbouring windows share it exactly once. The last sample before ``start`` therefore
  contributes the inside part of its segment to the first sample at or after ``start``; a sample exactly on an edge
  closes the last segment of one window and opens the first of the next;
* time not covered by a segment (before the first sample, after the last one, gaps) carries no measured energy;
  what it means is the caller's decision: an interval reports ``completeness < 1``, flex verification counts it as
  nothing delivered (actual = baseline);
* samples form a set keyed by time: a sample at an existing time replaces the old value, a late or out-of-order
  sample is put in time order, so the result depends only on the latest value per time, not on arrival order.

Why trapezoid, not holding a reading (settlement decision): the platform's power readings (``P_ACTIVE`` from
meters, inverters and chargers over Modbus/SunSpec/MQTT) are instantaneous values at their timestamp, not averages
over the period before it. Linear interpolation between them is exact for ramps and has an error of second order in
the sampling period, while a backward or forward hold lags every change by one period (biased whenever power ramps,
e.g. an EV charger following a set-point) and, without a gap limit, lets one reading stand for a whole slot. A step
change between two readings counts as a ramp: the error is at most half a sampling period of the step (a device
switching 3 kW right after a 5-s reading: 2.1 Wh), a hold's is up to a whole period, and for a step at a random
moment the trapezoid is unbiased. The trapezoid is also time-symmetric, which is what makes edge cutting share a segment exactly once between windows, and
it is the rule the market already settles on (through IntervalEnergy). Across a gap longer than ``max_gap_ms``
nothing is measured, so nothing is delivered: a meter that stops reporting cannot earn an incentive for the silent
time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

MS_PER_HOUR = 3_600_000.0
DEFAULT_MAX_GAP_MS = 300_000  # a segment longer than 5 minutes is a gap (intervals and flex verification)


@dataclass(frozen=True, slots=True)
class WindowEnergy:
    """Energy of net power samples in one window.

    ``import_kwh``/``export_kwh`` >= 0 (kWh); ``covered_ms``: integrated time inside the window (ms); ``samples``:
    samples with ``start <= ts < end``; ``bridged``: a segment longer than ``bridge_ms`` was integrated; ``max_kw``:
    highest net power seen (kW: the highest sample in the window, else the highest interpolated edge value), ``None``
    when nothing was seen.
    """

    import_kwh: float
    export_kwh: float
    covered_ms: int
    samples: int
    bridged: bool
    max_kw: float | None

    @property
    def net_kwh(self) -> float:
        """Import minus export, kWh."""
        return self.import_kwh - self.export_kwh

    @property
    def import_wh(self) -> float:
        return self.import_kwh * 1000.0

    @property
    def export_wh(self) -> float:
        return self.export_kwh * 1000.0


EMPTY = WindowEnergy(0.0, 0.0, 0, 0, False, None)


def split_trapezoid(p0_kw: float, p1_kw: float, hours: float) -> tuple[float, float]:
    """(import_kwh, export_kwh) of a linear power ramp p0 -> p1 (kW, import positive) lasting ``hours``.

    A ramp that crosses zero is split at the crossing so import and export are each exact.
    """
    if p0_kw >= 0.0 and p1_kw >= 0.0:
        return (p0_kw + p1_kw) * 0.5 * hours, 0.0
    if p0_kw <= 0.0 and p1_kw <= 0.0:
        return 0.0, -(p0_kw + p1_kw) * 0.5 * hours
    f = p0_kw / (p0_kw - p1_kw)  # fraction of the ramp before the zero crossing
    if p0_kw > 0.0:
        return p0_kw * f * hours * 0.5, -p1_kw * (1.0 - f) * hours * 0.5
    return p1_kw * (1.0 - f) * hours * 0.5, -p0_kw * f * hours * 0.5


def cut_segment(
    t0: int, p0_kw: float, t1: int, p1_kw: float, start: int, end: int, max_gap_ms: int
) -> tuple[int, float, int, float] | None:
    """The part of segment ``(t0, p0) -> (t1, p1)`` inside ``[start, end)`` as ``(a, p_a, b, p_b)`` (ms, kW), with
    the powers at the cut points linearly interpolated; ``None`` for a gap or a segment outside the window."""
    dt = t1 - t0
    if dt <= 0 or dt > max_gap_ms:
        return None
    a = t0 if t0 > start else start
    b = t1 if t1 < end else end
    if b <= a:
        return None
    slope = (p1_kw - p0_kw) / dt
    return a, p0_kw + slope * (a - t0), b, p0_kw + slope * (b - t0)


def window_slice(ts: Sequence[int], start: int, end: int) -> slice:
    """The samples (of ascending ``ts``, UTC epoch ms) that can affect ``[start, end)``: those inside it and the
    neighbour on each side."""
    return slice(max(0, bisect_left(ts, start) - 1), bisect_left(ts, end) + 1)


def integrate_power(
    ts: Sequence[int],
    kw: Sequence[float],
    start: int,
    end: int,
    max_gap_ms: int = DEFAULT_MAX_GAP_MS,
    bridge_ms: int | None = None,
) -> WindowEnergy:
    """Energy (kWh) of net power samples ``kw`` (kW, import positive) at ``ts`` (UTC epoch ms, ascending, unique)
    over ``[start, end)`` by the module's rule. ``bridge_ms`` (default ``max_gap_ms``): longer integrated segments
    set ``bridged``."""
    n = len(ts)
    if n == 0:
        return EMPTY
    bridge = max_gap_ms if bridge_ms is None else bridge_ms
    imp = exp = 0.0
    covered = 0
    bridged = False
    max_kw: float | None = None
    edge_max: float | None = None
    samples = 0
    i = window_slice(
        ts, start, end
    ).start  # the last sample before start: a segment from it may straddle start
    while i < n and ts[i] < end:
        t0, p0 = ts[i], kw[i]
        if t0 >= start:
            samples += 1
            if max_kw is None or p0 > max_kw:
                max_kw = p0
        i += 1
        if i >= n:
            break
        part = cut_segment(t0, p0, ts[i], kw[i], start, end, max_gap_ms)
        if part is None:
            continue
        a, pa, b, pb = part
        di, de = split_trapezoid(pa, pb, (b - a) / MS_PER_HOUR)
        imp += di
        exp += de
        covered += b - a
        if ts[i] - t0 > bridge:
            bridged = True
        if edge_max is None or max(pa, pb) > edge_max:
            edge_max = max(pa, pb)
    return WindowEnergy(imp, exp, covered, samples, bridged, max_kw if samples else edge_max)


class WindowIntegrator:
    """Streaming :func:`integrate_power` of one window ``[start, end)``: net energy and coverage.

    ``add`` takes samples in any order. The next sample inside the window costs O(1); a sample that is late, out
    of order, replaces one or straddles an edge takes the slow path (a late one recomputes the window from the kept
    samples: those inside it plus the neighbour on each side), so the state always equals :func:`integrate_power`
    over every sample seen. Samples more than ``max_gap_ms`` before ``start`` cannot change the window (their
    segments into it are gaps); callers may skip them.

    State (read by callers): ``ts``/``kw`` kept samples (UTC epoch ms ascending, kW); ``net_kwms`` import minus
    export inside the window, kW*ms (``net_kwh`` in kWh); ``uncovered_ms`` time inside ``[start, reach]`` not covered
    by a segment, where ``reach`` is the latest kept sample clipped to the window (``start`` before any sample
    inside it), so ``covered_ms = reach - start - uncovered_ms``.
    """

    __slots__ = ("start", "end", "max_gap_ms", "ts", "kw", "net_kwms", "uncovered_ms")

    def __init__(self, start: int, end: int, max_gap_ms: int = DEFAULT_MAX_GAP_MS) -> None:
        self.start, self.end, self.max_gap_ms = start, end, max_gap_ms
        self.ts: list[int] = []
        self.kw: list[float] = []
        self.net_kwms = 0.0
        self.uncovered_ms = 0

    @property
    def reach(self) -> int:
        """How far the kept samples reach into the window, UTC epoch ms (``start`` .. ``end``)."""
        if not self.ts or self.ts[-1] <= self.start:
            return self.start
        return min(self.ts[-1], self.end)

    @property
    def covered_ms(self) -> int:
        """Integrated time inside the window, ms."""
        return self.reach - self.start - self.uncovered_ms

    @property
    def net_kwh(self) -> float:
        """Import minus export inside the window, kWh."""
        return self.net_kwms / MS_PER_HOUR

    @property
    def samples(self) -> int:
        """Kept samples with ``start <= ts < end``."""
        return bisect_left(self.ts, self.end) - bisect_left(self.ts, self.start)

    def add(self, ts: int, kw: float) -> bool:
        """Take one sample (UTC epoch ms, kW); True when the kept samples changed."""
        times = self.ts
        if times:
            t0 = times[-1]
            dt = ts - t0
            if 0 < dt <= self.max_gap_ms and t0 >= self.start and ts <= self.end:  # next segment, inside
                vals = self.kw
                self.net_kwms += (vals[-1] + kw) * dt * 0.5
                times.append(ts)
                vals.append(kw)
                return True
        return self._add_other(ts, kw)

    def _add_other(self, ts: int, kw: float) -> bool:
        times, vals = self.ts, self.kw
        if not times:
            times.append(ts)
            vals.append(kw)
            self.uncovered_ms = self.reach - self.start  # a first sample inside: nothing covered before it
            return True
        t0 = times[-1]
        if ts <= t0:
            return self._insert(ts, kw)
        if t0 >= self.end:
            return False  # the right neighbour of the window is already known
        if ts <= self.start:  # a newer left neighbour: older samples can no longer matter
            if len(times) > 1:
                del times[1:], vals[1:]
            times[0], vals[0] = ts, kw
            return True
        covered = self.covered_ms
        part = cut_segment(t0, vals[-1], ts, kw, self.start, self.end, self.max_gap_ms)  # a gap or an edge
        if part is not None:
            a, pa, b, pb = part
            self.net_kwms += (pa + pb) * (b - a) * 0.5
            covered += b - a
        times.append(ts)
        vals.append(kw)
        self.uncovered_ms = self.reach - self.start - covered
        return True

    def _insert(self, ts: int, kw: float) -> bool:
        times, vals = self.ts, self.kw
        if ts < times[0] and times[0] <= self.start:
            return False  # older than the left neighbour
        i = bisect_left(times, ts)
        if i < len(times) and times[i] == ts:
            if vals[i] == kw:
                return False
            vals[i] = kw
        else:
            times.insert(i, ts)
            vals.insert(i, kw)
        first = bisect_left(times, self.start + 1) - 1  # last sample at or before start
        if first > 0:
            del times[:first], vals[:first]
        last = bisect_left(times, self.end) + 1  # keep the first sample at or after end
        del times[last:], vals[last:]
        e = integrate_power(times, vals, self.start, self.end, self.max_gap_ms)
        self.net_kwms = e.net_kwh * MS_PER_HOUR
        self.uncovered_ms = self.reach - self.start - e.covered_ms
        return True
