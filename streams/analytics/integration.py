"""Energy of a sampled signal over a time window: trapezoidal power integration and register deltas.

Pure numeric helpers used by :mod:`streams.analytics.intervals`. A *series* is two parallel lists sorted by
time: ``ts`` (UTC epoch ms) and ``vals``. A *segment* is a pair of consecutive samples; a segment longer than
``max_gap_ms`` is a gap and contributes neither energy nor coverage; a segment longer than ``bridge_ms`` (but
within ``max_gap_ms``) is integrated but flagged as bridged (the interval becomes ``estimated``). Segments that
straddle the window edges are cut there with linear interpolation, so neighbouring windows share the energy
exactly once.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

MS_PER_HOUR = 3_600_000.0


@dataclass(frozen=True, slots=True)
class WindowEnergy:
    """Energy found in one window.

    ``import_wh``/``export_wh`` >= 0 (Wh); ``covered_ms``: integrated time inside the window; ``samples``: samples
    with ``start <= ts < end``; ``max_w``: highest net power seen (W), ``None`` when nothing was integrated.
    """

    import_wh: float
    export_wh: float
    covered_ms: int
    samples: int
    bridged: bool
    max_w: float | None


EMPTY = WindowEnergy(0.0, 0.0, 0, 0, False, None)


def split_trapezoid(p0_w: float, p1_w: float, hours: float) -> tuple[float, float]:
    """(import_wh, export_wh) of a linear power ramp p0 -> p1 (W, import positive) lasting ``hours``.

    A ramp that crosses zero is split at the crossing so import and export are each exact.
    """
    if p0_w >= 0.0 and p1_w >= 0.0:
        return (p0_w + p1_w) * 0.5 * hours, 0.0
    if p0_w <= 0.0 and p1_w <= 0.0:
        return 0.0, -(p0_w + p1_w) * 0.5 * hours
    f = p0_w / (p0_w - p1_w)  # fraction of the ramp before the zero crossing
    if p0_w > 0.0:
        return p0_w * f * hours * 0.5, -p1_w * (1.0 - f) * hours * 0.5
    return p1_w * (1.0 - f) * hours * 0.5, -p0_w * f * hours * 0.5


def register_delta(v0_wh: float, v1_wh: float, modulus_wh: float | None) -> float:
    """Increase of a cumulative register from v0 to v1 (Wh), handling a counter rollover at ``modulus_wh``.

    A decrease larger than half the modulus is a rollover (``v1 + modulus - v0``); any other decrease is a meter
    reset or glitch and counts as 0 (never negative energy).
    """
    d = v1_wh - v0_wh
    if d >= 0.0:
        return d
    if modulus_wh is not None and -d > modulus_wh / 2:
        return d + modulus_wh
    return 0.0


def _first_index(ts: list[int], start: int) -> int:
    """Index of the last sample before ``start`` (the left end of a segment that may straddle it)."""
    i = bisect_left(ts, start)
    return i - 1 if i > 0 else 0


def integrate_power(
    ts: list[int], vals: list[float], start: int, end: int, max_gap_ms: int, bridge_ms: int
) -> WindowEnergy:
    """Trapezoidal integral of net power samples (W, import positive) over ``[start, end)``."""
    n = len(ts)
    if n == 0:
        return EMPTY
    imp = exp = 0.0
    covered = 0
    bridged = False
    max_w: float | None = None
    seg_max: float | None = None
    samples = 0
    i = _first_index(ts, start)
    while i < n and ts[i] < end:
        t0, v0 = ts[i], vals[i]
        if t0 >= start:
            samples += 1
            if max_w is None or v0 > max_w:
                max_w = v0
        if i + 1 >= n:
            break
        t1, v1 = ts[i + 1], vals[i + 1]
        i += 1
        dt = t1 - t0
        if t1 <= start or dt > max_gap_ms:
            continue
        a = t0 if t0 > start else start
        b = t1 if t1 < end else end
        if b <= a:
            continue
        slope = (v1 - v0) / dt
        va = v0 + slope * (a - t0)
        vb = v0 + slope * (b - t0)
        di, de = split_trapezoid(va, vb, (b - a) / MS_PER_HOUR)
        imp += di
        exp += de
        covered += b - a
        if dt > bridge_ms:
            bridged = True
        if seg_max is None or max(va, vb) > seg_max:
            seg_max = max(va, vb)
    return WindowEnergy(imp, exp, covered, samples, bridged, max_w if samples else seg_max)


def integrate_register(
    ts: list[int],
    vals: list[float],
    start: int,
    end: int,
    max_gap_ms: int,
    bridge_ms: int,
    modulus_wh: float | None,
) -> WindowEnergy:
    """Energy (Wh) a cumulative register gained inside ``[start, end)``; returned in ``import_wh``.

    Each segment's delta is spread linearly over the segment, so the part inside the window is
    ``delta * overlap / duration``. ``max_w`` is the highest segment mean power (W).
    """
    n = len(ts)
    if n == 0:
        return EMPTY
    energy = 0.0
    covered = 0
    bridged = False
    max_w: float | None = None
    samples = 0
    i = _first_index(ts, start)
    while i < n and ts[i] < end:
        t0, v0 = ts[i], vals[i]
        if t0 >= start:
            samples += 1
        if i + 1 >= n:
            break
        t1, v1 = ts[i + 1], vals[i + 1]
        i += 1
        dt = t1 - t0
        if t1 <= start or dt > max_gap_ms or dt <= 0:
            continue
        a = t0 if t0 > start else start
        b = t1 if t1 < end else end
        if b <= a:
            continue
        delta = register_delta(v0, v1, modulus_wh)
        energy += delta * (b - a) / dt
        covered += b - a
        if dt > bridge_ms:
            bridged = True
        mean_w = delta / (dt / MS_PER_HOUR)
        if max_w is None or mean_w > max_w:
            max_w = mean_w
    return WindowEnergy(energy, 0.0, covered, samples, bridged, max_w)
