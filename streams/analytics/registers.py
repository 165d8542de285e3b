"""Energy a cumulative meter register (``E_IMPORT``/``E_EXPORT``, Wh) gained in a time window: deltas with rollover.

Pure numeric helpers used by :mod:`streams.analytics.intervals`; power samples are integrated by the platform's one
rule in :mod:`streams.energy_integration`, whose segment rules this follows: a *series* is two parallel lists sorted
by time, ``ts`` (UTC epoch ms) and ``vals`` (Wh); a segment longer than ``max_gap_ms`` is a gap (no energy, no
coverage), one longer than ``bridge_ms`` is integrated but flagged ``bridged``; a segment straddling a window edge
is split there in proportion to time, so neighbouring windows share its energy exactly once.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from streams.energy_integration import MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class RegisterEnergy:
    """Energy one register gained in a window: ``energy_wh`` >= 0 (Wh); ``covered_ms``: integrated time inside the
    window (ms); ``samples``: samples with ``start <= ts < end``; ``max_w``: highest segment mean power (W), ``None``
    when nothing was integrated."""

    energy_wh: float
    covered_ms: int
    samples: int
    bridged: bool
    max_w: float | None


NO_REGISTER = RegisterEnergy(0.0, 0, 0, False, None)


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


def integrate_register(
    ts: list[int],
    vals: list[float],
    start: int,
    end: int,
    max_gap_ms: int,
    bridge_ms: int,
    modulus_wh: float | None,
) -> RegisterEnergy:
    """Energy (Wh) a cumulative register gained inside ``[start, end)``.

    Each segment's delta is spread linearly over the segment, so the part inside the window is
    ``delta * overlap / duration``.
    """
    n = len(ts)
    if n == 0:
        return NO_REGISTER
    energy = 0.0
    covered = 0
    bridged = False
    max_w: float | None = None
    samples = 0
    i = max(0, bisect_left(ts, start) - 1)  # last sample before start: left end of a straddling segment
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
    return RegisterEnergy(energy, covered, samples, bridged, max_w)
