"""Measured vs forecast vs baseline load (kW) per prosumer and for the whole portfolio."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from edream.dashboard.grid import Grid, GridSum, grid_sum
from edream.dashboard.pages import page_href
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource, panel

#: Plot at most this many prosumers (alphabetically) next to the portfolio.
MAX_PROSUMERS = 6
PORTFOLIO = "portfolio"
#: The measured curves' common time grid, ms.
GRID_STEP_MS = 15_000
#: A meter's reading is held at most this long (ms); older, the meter counts as not reporting (not as 0 kW).
STALE_AFTER_MS = 90_000
#: Grid times newer than this (ms before now) are not shown yet: readings stamped before them may still be on their
#: way (connector batch, broker, the sink's 1-s batch; reading -> ClickHouse p99 about 3 s in the smoke bench), and
#: a point drawn before they land would be too low or too high and move at the next refresh (measured: a newest
#: point shown at 47.05 kW was 45.63 kW in ClickHouse once its readings had landed).
SETTLE_MS = 15_000


@dataclass(frozen=True)
class MeterSamples:
    """Per meter: its prosumer and readings ``(t_ms, kW)``, the newest reading of each grid bucket (UTC epoch
    ms; a bucket ``(t - step, t]`` ends at grid time ``t``), oldest first."""

    prosumer: dict[str, str | None]
    samples: dict[str, list[tuple[int, float]]]


def meter_samples(src: PanelSource, grid: Grid, prosumer: str | None = None) -> MeterSamples:
    """Active power (kW) of every meter (of ``prosumer`` if given) with readings in the look-back window (plus the
    staleness limit, so the first grid times can hold earlier readings)."""
    table = src.tables["measurements"]
    data = rows(
        src.client,
        f"""SELECT device_id, argMax(prosumer_id, ts) AS prosumer,
                   intDiv(toUnixTimestamp64Milli(ts) - 1, {grid.step_ms}) * {grid.step_ms} + {grid.step_ms} AS bucket,
                   toUnixTimestamp64Milli(max(ts)) AS t, argMax(if(unit = 'W', value / 1000, value), ts) AS kw
            FROM {table} FINAL
            WHERE quantity = 'P_ACTIVE' AND phase = 'TOTAL' AND value IS NOT NULL AND unit IN ('W', 'kW')
              AND ts > fromUnixTimestamp64Milli({{since:Int64}}) AND ts <= fromUnixTimestamp64Milli({{until:Int64}})
              AND ({{prosumer:String}} = '' OR prosumer_id = {{prosumer:String}})
            GROUP BY device_id, bucket ORDER BY device_id, bucket""",
        {"since": grid.start_ms - STALE_AFTER_MS, "until": grid.end_ms, "prosumer": prosumer or ""},
    )
    prosumer: dict[str, str | None] = {}
    samples: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in data:
        meter = str(r["device_id"])
        prosumer[meter] = r["prosumer"] or None
        samples[meter].append((int(r["t"]), float(r["kw"])))
    return MeterSamples(prosumer, dict(samples))


def enrolled_prosumers(src: PanelSource) -> set[str] | None:
    """Prosumers with an active DR enrolment (``flex.enrolments.v1``), or None if that table does not exist."""
    table = src.tables["flex_enrolments"]
    if require(src.client, table):
        return None
    data = rows(src.client, f"SELECT prosumer_id FROM {table} FINAL WHERE active")
    return {str(r["prosumer_id"]) for r in data}


def forecast_kw(src: PanelSource) -> dict[str, list[list[float]]]:
    """Latest net forecast per entity and step (consumption minus production, as the meters measure net active
    power: import positive), converted from Wh per step to average kW; an entity without a production forecast
    produces nothing. Profiles of several granularities (e.g. 30 and 60 min) share some times: there the latest
    issue wins (one point per entity and time; summed over entities, each counts once)."""
    table = src.tables["forecasts"]
    data = rows(
        src.client,
        f"""SELECT entity_id, t,
                   argMaxIf(kw, issued_at, property = 'ENERGY_CONSUMPTION')
                    - argMaxIf(kw, issued_at, property = 'ENERGY_PRODUCTION') AS kw
            FROM (
                SELECT entity_id, property, issued_at, JSONExtractInt(p, 'ts') AS t,
                       JSONExtractFloat(p, 'value') / (profile_granularity_minutes / 60) / 1000 AS kw
                FROM {table} FINAL ARRAY JOIN JSONExtractArrayRaw(points) AS p
                WHERE property IN ('ENERGY_CONSUMPTION', 'ENERGY_PRODUCTION'))
            WHERE t BETWEEN {{since:Int64}} AND {{until:Int64}}
            GROUP BY entity_id, t ORDER BY entity_id, t""",
        {"since": src.now_ms - src.window_ms, "until": src.now_ms + src.window_ms},
    )
    return _by_entity(data, "entity_id", "t", "kw")


def baseline_kw(src: PanelSource) -> dict[str, list[list[float]]]:
    """Baseline (kW) per prosumer and settlement period (latest version)."""
    table = src.tables["baselines"]
    data = rows(
        src.client,
        f"""SELECT prosumer_id, toUnixTimestamp64Milli(isp_start) AS t,
                   argMax(baseline_kw + adjustment_kw, version) AS kw
            FROM {table}
            WHERE isp_start BETWEEN fromUnixTimestamp64Milli({{since:Int64}}) AND fromUnixTimestamp64Milli({{until:Int64}})
            GROUP BY prosumer_id, t ORDER BY prosumer_id, t""",
        {"since": src.now_ms - src.window_ms, "until": src.now_ms + src.window_ms},
    )
    return _by_entity(data, "prosumer_id", "t", "kw")


def _by_entity(data: list[dict[str, Any]], entity: str, t: str, y: str) -> dict[str, list[list[float]]]:
    out: dict[str, list[list[float]]] = defaultdict(list)
    for r in data:
        out[str(r[entity])].append([int(r[t]), round(float(r[y]), 4)])
    return dict(out)


def portfolio_sum(per_entity: dict[str, list[list[float]]]) -> list[list[float]]:
    """Point-wise sum of curves that share their time steps (forecasts and baselines: one value per 15-min
    period); a period missing for some entity counts as 0 for it."""
    total: dict[int, float] = defaultdict(float)
    for points in per_entity.values():
        for t, y in points:
            total[int(t)] += y
    return [[t, round(total[t], 4)] for t in sorted(total)]


def from_first_reading(grid: Grid, per_meter: dict[str, list[tuple[int, float]]]) -> Grid:
    """``grid`` starting at the first reading of ``per_meter`` (no empty hours on the time axis)."""
    if not per_meter:
        return grid
    first = min(s[0][0] for s in per_meter.values())
    return Grid.aligned(max(grid.start_ms, first), grid.end_ms, grid.step_ms)


def measured_grid(src: PanelSource) -> Grid:
    """The measured curves' grid over the look-back window up to :data:`SETTLE_MS` before now (UTC epoch ms)."""
    return Grid.aligned(src.now_ms - src.window_ms, src.now_ms - SETTLE_MS, GRID_STEP_MS)


def measured_curves(src: PanelSource, enrolled: set[str] | None) -> tuple[GridSum, dict[str, GridSum]]:
    """The portfolio's measured kW on the common grid (meters of enrolled prosumers, or of any prosumer when
    enrolments are not sunk) and the curve of each prosumer of the portfolio."""
    grid = measured_grid(src)
    meters = meter_samples(src, grid)
    by_prosumer: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(dict)
    for meter, pid in meters.prosumer.items():
        if pid and (enrolled is None or pid in enrolled):
            by_prosumer[pid][meter] = meters.samples[meter]
    portfolio = {m: s for per in by_prosumer.values() for m, s in per.items()}
    grid = from_first_reading(grid, portfolio)
    return (
        grid_sum(portfolio, grid, STALE_AFTER_MS),
        {pid: grid_sum(by_prosumer[pid], grid, STALE_AFTER_MS) for pid in sorted(by_prosumer)},
    )


@panel("load", "Measured vs forecast vs baseline", order=20)
def load(src: PanelSource) -> dict[str, Any]:
    """Active power in kW (time axis in UTC): measured (each meter's newest reading held for at most 90 s, summed
    on a 15-second grid), the latest net forecast (consumption minus production) and the baseline, for the
    portfolio of enrolled prosumers and per prosumer. The newest 15 s are held back (:data:`SETTLE_MS`) so that the
    readings stamped before a grid time have landed when it is drawn; a reading that arrives later still changes it
    at the next refresh."""
    notes = []
    for name, logical in (("measured", "measurements"), ("forecast", "forecasts"), ("baseline", "baselines")):
        if require(src.client, src.tables[logical]):
            notes.append(f"{name}: table {src.tables[logical]} does not exist yet")
    enrolled = enrolled_prosumers(src)
    if enrolled is None:
        notes.append(
            f"enrolments: table {src.tables['flex_enrolments']} does not exist; portfolio = every prosumer"
        )
    empty = GridSum([], [], 0)
    portfolio, per_prosumer = (
        (empty, {}) if require(src.client, src.tables["measurements"]) else measured_curves(src, enrolled)
    )
    forecast = {} if require(src.client, src.tables["forecasts"]) else forecast_kw(src)
    baseline = {} if require(src.client, src.tables["baselines"]) else baseline_kw(src)
    members = enrolled if enrolled is not None else set(per_prosumer)
    blocks: list[dict[str, Any]] = [
        {
            "kind": "stats",
            "stats": [
                {
                    "label": "prosumers enrolled" if enrolled is not None else "prosumers with readings",
                    "value": len(members),
                },
                {"label": "meters reporting", "value": f"{portfolio.reporting_now} of {portfolio.meters}"},
                {"label": "portfolio now", "value": _last_value(portfolio.points), "unit": "kW"},
            ],
        },
        _chart(
            f"Portfolio: {len(members)} prosumers, {portfolio.reporting_now} of {portfolio.meters} meters reporting",
            {
                "measured": portfolio.points,
                "forecast": forecast.get(PORTFOLIO)
                or portfolio_sum({k: v for k, v in forecast.items() if k in members}),
                "baseline": portfolio_sum({k: v for k, v in baseline.items() if k in members}),
            },
            reporting=portfolio.reporting,
            wide=True,
        ),
    ]
    for pid in sorted(members)[:MAX_PROSUMERS]:
        curve = per_prosumer.get(pid, empty)
        blocks.append(
            _chart(
                pid,
                {
                    "measured": curve.points,
                    "forecast": forecast.get(pid, []),
                    "baseline": baseline.get(pid, []),
                },
                href=page_href("prosumer", pid)["href"],  # the prosumer's drill-down page
            )
        )
    return {"blocks": blocks, "note": "; ".join(notes) or None}


def _last_value(points: list[list[float | None]]) -> float | str:
    """The newest non-empty value, in 10 W steps."""
    return next((round(p[1], 2) for p in reversed(points) if p[1] is not None), "n/a")


def _chart(title: str, series: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "series",
        "title": title,
        "unit": "kW",
        "series": [{"name": k, "points": v} for k, v in series.items()],
        **extra,
    }
