"""USEF/UFTP D-Prognosis from the platform's forecasts (pure functions, no I/O, no signing).

In UFTP 3.x the aggregator tells the DSO, per congestion point and period (a local date, ISPs of ``isp_minutes``),
the power it expects its portfolio at that congestion point to draw per ISP (W, USEF sign: consumption positive,
net production negative), with a ``Revision`` that increases with every update.

What the platform forecasts (``forecast.profiles.v1``, ClickHouse ``forecasts``, ``GET /api/v1/forecasts``; the
forecasts stage, :mod:`streams.analytics.forecast_processor`): per *prosumer* and property (ENERGY_CONSUMPTION =
imported energy, ENERGY_PRODUCTION = exported energy), profiles issued on the prosumer's own event time at three
horizons: day-ahead (24 h of 60-min points), intra-day (4 h of 30-min points) and hour-ahead (1 h, 60-min
points); a point is the energy (Wh) of its step. No portfolio or area forecast is published.

How a congestion point's prognosis is formed here:

* A prosumer's power at an ISP is the mean power (W = Wh x 60 / step minutes) of the point of the *latest issued*
  forecast whose step holds the whole ISP (so intra-day and hour-ahead forecasts replace day-ahead where they
  reach; on equal issue time the finer step wins). Its net power is consumption minus production; without a
  production forecast at that ISP its production counts 0.
* The congestion point's portfolio is the flex area the DSO registry maps it to (``congestion_points``, see
  :mod:`streams.flex.dsos`): the area's active enrolled prosumers. Its power at an ISP is the sum of their net
  powers, only at ISPs that *every* prosumer of the area with a consumption forecast covers (a sum over part of
  the portfolio would understate it); prosumers without any forecast are left out (nothing is known of them).
* ISPs no forecast covers are omitted. UFTP asks a D-Prognosis to hold every ISP of its period, but the platform
  forecasts at most 24 h ahead and nothing of the past: the message holds the ISPs it knows, one message per
  period (a 24-h forecast spans two local dates, so two messages).
* ``Revision`` is the issue time in whole seconds since :data:`REVISION_EPOCH_MS` (fits a 32-bit integer until
  2093): deterministic, and increasing across rounds and restarts (as long as the clock does not go back). The
  MessageID is derived from congestion point, period and revision, so the same round sent again is the same
  message.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shapeshifter_uftp import DPrognosis, DPrognosisISP
from xsdata.models.datatype import XmlDate, XmlDuration

from connectors.uftp.isp import MS_PER_MINUTE, frame_of
from connectors.uftp.mapping import message_id_for

CONSUMPTION, PRODUCTION = "ENERGY_CONSUMPTION", "ENERGY_PRODUCTION"
#: span of each forecast horizon (``streams.analytics.forecasting.HORIZONS``), ms: only forecasts issued within it
#: before now still reach the present or the future
HORIZON_SPAN_MS = {"DAYAHEAD": 86_400_000, "INTRA_DAY": 4 * 3_600_000, "ONE_HOUR_AHEAD": 3_600_000}
#: 2025-01-01T00:00:00Z, UTC epoch ms: revision 0
REVISION_EPOCH_MS = 1_735_689_600_000


@dataclass(frozen=True)
class _Point:
    """A prosumer's forecast power at one ISP: from the point of the forecast issued at ``issued_at`` (UTC epoch
    ms) with steps of ``step_ms``; ``watts`` its mean power."""

    issued_at: int
    step_ms: int
    watts: float

    def beats(self, other: _Point | None) -> bool:
        return other is None or (self.issued_at, -self.step_ms) > (other.issued_at, -other.step_ms)


#: prosumer id -> property -> ISP start (UTC epoch ms) -> forecast power (W)
ProsumerPower = dict[str, dict[str, dict[int, float]]]


def prosumer_power(rows: Iterable[Mapping[str, Any]], isp_minutes: int) -> ProsumerPower:
    """Forecast rows (avro/Forecast.avsc, as ``GET /api/v1/forecasts`` lists them) -> per prosumer and property the
    forecast power at every ISP of ``isp_minutes`` (ISP starts are UTC multiples of the ISP length) that lies whole
    inside one forecast point, from the latest issued forecast (see module doc). Portfolio forecasts, other
    properties, points without a finite value and profiles without a positive step are skipped."""
    isp_ms = isp_minutes * MS_PER_MINUTE
    best: dict[tuple[str, str, int], _Point] = {}
    for row in rows:
        prop, step_min = row.get("property"), row.get("profile_granularity_minutes")
        if row.get("entity_kind") != "PROSUMER" or prop not in (CONSUMPTION, PRODUCTION):
            continue
        if not isinstance(step_min, int) or step_min <= 0:
            continue
        step_ms, issued, pid = step_min * MS_PER_MINUTE, int(row["issued_at"]), str(row["entity_id"])
        for p in row.get("points") or ():
            wh = p.get("value")
            if not isinstance(wh, int | float) or not math.isfinite(wh):
                continue
            start = int(p["ts"])
            point = _Point(issued, step_ms, wh * 3_600_000 / step_ms)
            isp = -(-start // isp_ms) * isp_ms  # the first ISP start at or after the point's start
            while isp + isp_ms <= start + step_ms:
                key = (pid, prop, isp)
                if point.beats(best.get(key)):
                    best[key] = point
                isp += isp_ms
    power: ProsumerPower = defaultdict(lambda: defaultdict(dict))
    for (pid, prop, isp), point in best.items():
        power[pid][prop][isp] = point.watts
    return {pid: dict(props) for pid, props in power.items()}


def area_power(power: ProsumerPower, prosumer_ids: Iterable[str]) -> dict[int, int]:
    """The portfolio of ``prosumer_ids`` (an area's active prosumers): ISP start (UTC epoch ms) -> net forecast
    power, W rounded, at the ISPs every one of them with a consumption forecast covers (see module doc)."""
    members = [power[pid] for pid in sorted(set(prosumer_ids)) if power.get(pid, {}).get(CONSUMPTION)]
    if not members:
        return {}
    common = set.intersection(*(set(m[CONSUMPTION]) for m in members))
    return {
        isp: round(sum(m[CONSUMPTION][isp] - m.get(PRODUCTION, {}).get(isp, 0.0) for m in members))
        for isp in sorted(common)
    }


def revision_at(issued_at_ms: int) -> int:
    """The D-Prognosis Revision of a prognosis issued at ``issued_at_ms`` (UTC epoch ms), see module doc."""
    return (issued_at_ms - REVISION_EPOCH_MS) // 1000


def d_prognoses(
    power: Mapping[int, int], congestion_point: str, time_zone: str, isp_minutes: int, issued_at_ms: int
) -> list[DPrognosis]:
    """One D-Prognosis per period (local date in ``time_zone``) of ``power`` (ISP start, UTC epoch ms -> W), its ISPs
    in order, revision from ``issued_at_ms``; sender, recipient and time stamp are filled in by the client. Raises
    ValueError when an ISP start is not an ISP start of its period (a time zone whose offset is not a whole
    number of ISPs)."""
    by_period: dict[Any, list[DPrognosisISP]] = defaultdict(list)
    for start in sorted(power):
        frame = frame_of(start, time_zone, isp_minutes)
        by_period[frame.period].append(DPrognosisISP(power=int(power[start]), start=frame.isp_of(start)))
    revision = revision_at(issued_at_ms)
    return [
        DPrognosis(
            message_id=message_id_for(f"d-prognosis/{congestion_point}/{period.isoformat()}/{revision}"),
            isp_duration=XmlDuration(f"PT{isp_minutes}M"),
            time_zone=time_zone,
            period=XmlDate.from_date(period),
            congestion_point=congestion_point,
            isps=isps,
            revision=revision,
        )
        for period, isps in sorted(by_period.items())
    ]


def isp_powers(message: DPrognosis) -> Sequence[tuple[int, int]]:
    """(ISP number, W) of a D-Prognosis, what a later round compares to decide whether the prognosis changed."""
    return tuple((isp.start, isp.power) for isp in message.isps)
