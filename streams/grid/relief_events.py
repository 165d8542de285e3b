"""Proof-of-relief figures of one congestion point and slot as the ``GridRelief`` record (``avro/GridRelief.avsc``,
``grid.relief.v1``).

``event_id`` is ``congestion_point_id/slot_start/version`` with ``version`` the latest input time used (see the
contract), so recomputing the same inputs (a replay, a restart) gives the same id and the sink collapses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streams.grid.events import SLOT_MS
from streams.grid.measured_relief import Verdict, overload_kw

if TYPE_CHECKING:
    from streams.grid.model import CongestionPoint


@dataclass(frozen=True)
class ReliefFigures:
    """Loadings in % (None: unknown), kW signed (+ more consumption); ``missing_meters`` only when measured."""

    slot_start: int
    loading_before: float | None
    loading_expected: float | None
    ordered_kw: float
    unmapped_kw: float
    orders: int
    loading_measured: float | None = None
    missing_meters: int = 0


def relief_record(
    cp: CongestionPoint,
    grid_id: str,
    f: ReliefFigures,
    verdict: Verdict,
    version: int,
    prosumers: int,
    computed_at: int,
) -> dict[str, Any]:
    """The GridRelief record (phase MEASURED when ``verdict`` is not PENDING; times UTC epoch ms)."""
    return {
        "event_id": f"{cp.id}/{f.slot_start}/{version}",
        "grid_id": grid_id,
        "congestion_point_id": cp.id,
        "area_id": cp.area_id,
        "slot_start": f.slot_start,
        "slot_end": f.slot_start + SLOT_MS,
        "phase": "EXPECTED" if verdict is Verdict.PENDING else "MEASURED",
        "verdict": str(verdict),
        "version": version,
        "max_loading_percent": cp.max_loading_percent,
        "loading_before_percent": f.loading_before,
        "loading_expected_percent": f.loading_expected,
        "loading_measured_percent": f.loading_measured,
        "overload_before_kw": overload_kw(cp, f.loading_before),
        "overload_expected_kw": overload_kw(cp, f.loading_expected),
        "overload_measured_kw": overload_kw(cp, f.loading_measured),
        "ordered_kw": f.ordered_kw,
        "unmapped_kw": f.unmapped_kw,
        "orders": f.orders,
        "prosumers": prosumers,
        "missing_meters": f.missing_meters,
        "computed_at": computed_at,
    }
