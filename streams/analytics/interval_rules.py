"""The domain rules of 15-minute interval energy, shared by every interval aggregator.

* which readings count (:data:`USED_QUANTITIES`, phase ``TOTAL``, a value);
* the parameters (:class:`IntervalConfig`);
* the ``IntervalEnergy`` fields of one window from a meter's samples (:func:`window_fields`): the register method
  (``REGISTER_DELTA``, :mod:`streams.analytics.registers`) whenever register data covers the window, otherwise
  power integrated by the platform's one rule (``POWER_INTEGRATION``, :mod:`streams.energy_integration`);
* when a recomputed window is a change worth a new version (:func:`signature`).

Units: times UTC epoch ms, power samples W (``P_ACTIVE``, net, import positive), registers Wh, outputs Wh and kW.
The stage (:mod:`streams.analytics.interval_processor`) and the in-memory :class:`~streams.analytics.intervals.
IntervalAggregator` (benchmarks, evaluation) both build their records here, so they cannot drift apart.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.analytics.registers import RegisterEnergy, integrate_register
from streams.energy_integration import DEFAULT_MAX_GAP_MS, EMPTY, integrate_power, window_slice

POWER = "P_ACTIVE"
REG_IMPORT = "E_IMPORT"
REG_EXPORT = "E_EXPORT"
USED_QUANTITIES = frozenset({POWER, REG_IMPORT, REG_EXPORT})

#: the samples of one quantity: ascending unique times (UTC epoch ms) and values (W or Wh)
Series = tuple[Sequence[int], Sequence[float]]


@dataclass(frozen=True)
class IntervalConfig:
    """Aggregation parameters (all durations in ms).

    ``expected_period_ms``: nominal meter sampling period (eDREAM field devices: 5 s); gives
    ``expected_samples``; a segment longer than ``bridge_factor * expected_period_ms`` marks the interval
    ``estimated``; a segment longer than ``max_gap_ms`` is a gap (not integrated, lowers completeness).
    ``register_modulus_wh``: value at which energy registers roll over to 0 (None: never).
    ``settle_ms``: a closed window changed by late readings is re-emitted once its meter has moved on, or once the
    wall clock (ticks) has gone this far past the last of those readings.
    """

    interval_ms: int = 900_000
    allowed_lateness_ms: int = 30_000
    correction_horizon_ms: int = 3_600_000
    expected_period_ms: int = 5_000
    bridge_factor: float = 2.5
    max_gap_ms: int = DEFAULT_MAX_GAP_MS
    register_modulus_wh: float | None = 1e9
    settle_ms: int = 2_000

    @property
    def bridge_ms(self) -> int:
        return int(self.expected_period_ms * self.bridge_factor)

    @property
    def expected_samples(self) -> int:
        return max(1, self.interval_ms // self.expected_period_ms)


@dataclass(slots=True)
class Outcome:
    """Result of feeding one reading: ``status`` is accepted | duplicate | ignored | too_late; ``intervals`` the
    IntervalEnergy records it closed or corrected."""

    status: str
    intervals: list[dict[str, Any]]


def counts(m: Mapping[str, Any]) -> bool:
    """Whether a validated Measurement feeds interval energy (a used quantity, phase TOTAL, a value)."""
    return (
        m["quantity"] in USED_QUANTITIES
        and (m.get("phase") or "TOTAL") == "TOTAL"
        and m.get("value") is not None
    )


def owner_of(m: Mapping[str, Any]) -> str:
    """Who an interval belongs to: the prosumer, else the site, else the device itself."""
    return m.get("prosumer_id") or m.get("site_id") or m["device_id"]


def window_fields(
    cfg: IntervalConfig, device_id: str, prosumer_id: str, ws: int, series: Mapping[str, Series]
) -> dict[str, Any] | None:
    """The IntervalEnergy fields (without version, ids and ``computed_at``) of window ``[ws, ws + interval)``, or
    None when it holds no data. ``series``: per quantity, at least the samples inside the window and the
    neighbour on each side (more are allowed)."""
    we = ws + cfg.interval_ms
    args = (ws, we, cfg.max_gap_ms, cfg.bridge_ms)
    regs = [
        integrate_register(s[0], s[1], *args, cfg.register_modulus_wh) if s is not None else None
        for s in (series.get(REG_IMPORT), series.get(REG_EXPORT))
    ]
    present = [r for r in regs if r is not None and (r.covered_ms or r.samples)]
    power_s = series.get(POWER)
    power = EMPTY
    if power_s is not None:  # stored in W as received; the integration takes kW
        ts, watts = power_s
        near = window_slice(ts, ws, we)
        power = integrate_power(ts[near], [w / 1000.0 for w in watts[near]], *args)
    if present:
        method = "REGISTER_DELTA"
        imp = regs[0].energy_wh if regs[0] is not None else 0.0
        exp = regs[1].energy_wh if regs[1] is not None else 0.0
        covered = min(r.covered_ms for r in present)
        samples = max(r.samples for r in present)
        bridged = any(r.bridged for r in present)
        max_kw = power.max_kw if power.samples else _register_max_kw(regs[0], regs[1])
    elif power.covered_ms or power.samples:
        method = "POWER_INTEGRATION"
        imp, exp, covered = power.import_wh, power.export_wh, power.covered_ms
        samples, bridged, max_kw = power.samples, power.bridged, power.max_kw
    else:
        return None
    hours = covered / 3_600_000.0
    return {
        "prosumer_id": prosumer_id,
        "device_id": device_id,
        "interval_start": ws,
        "interval_end": we,
        "import_wh": imp,
        "export_wh": exp,
        "avg_kw": (imp - exp) / hours / 1000.0 if hours > 0 else 0.0,
        "max_kw": max_kw or 0.0,
        "samples": samples,
        "expected_samples": cfg.expected_samples,
        "completeness": covered / cfg.interval_ms,
        "method": method,
        "estimated": bridged,
    }


def settled(settling: list[int], until_ms: int, interval_ms: int) -> tuple[list[int], list[int]]:
    """Split a meter's settling window starts (ascending, UTC epoch ms) into those ending at or before
    ``until_ms`` (due for re-emission) and the others (still settling)."""
    n = bisect_right(settling, until_ms - interval_ms)
    return settling[:n], settling[n:]


def signature(rec: Mapping[str, Any]) -> tuple:
    """What must change for a recomputed window to be emitted again (with ``version + 1``)."""
    return (
        round(rec["import_wh"], 6),
        round(rec["export_wh"], 6),
        rec["samples"],
        round(rec["completeness"], 9),
        rec["method"],
    )


def versioned(rec: dict[str, Any], version: int, computed_at_ms: int) -> dict[str, Any]:
    """``rec`` with its version, deterministic ``event_id`` (``device/interval_start/version``) and computation
    time (UTC epoch ms, not part of the id)."""
    rec["version"] = version
    rec["event_id"] = f"{rec['device_id']}/{rec['interval_start']}/{version}"
    rec["computed_at"] = computed_at_ms
    return rec


def _register_max_kw(imp: RegisterEnergy | None, exp: RegisterEnergy | None) -> float | None:
    """Highest net power (kW) from register segment means: import peak, or the export peak as a negative number."""
    if imp is not None and imp.max_w is not None and imp.max_w > 0:
        return imp.max_w / 1000.0
    if exp is not None and exp.max_w is not None:
        return -exp.max_w / 1000.0
    return None
