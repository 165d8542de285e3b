"""Measured vs forecast vs baseline load (kW) per prosumer and for the whole portfolio."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource, panel

#: Plot at most this many prosumers (alphabetically) next to the portfolio.
MAX_PROSUMERS = 6
PORTFOLIO = "portfolio"
BUCKET_MS = 15_000


def measured_kw(src: PanelSource) -> dict[str, list[list[float]]]:
    """Average active power (kW) per prosumer and minute, summed over the prosumer's meters."""
    table = src.tables["measurements"]
    data = rows(
        src.client,
        f"""SELECT entity, bucket, sum(kw) AS kw FROM (
                SELECT ifNull(prosumer_id, device_id) AS entity, device_id,
                       intDiv(toUnixTimestamp64Milli(ts), {BUCKET_MS}) * {BUCKET_MS} AS bucket,
                       avg(if(unit = 'W', value / 1000, value)) AS kw
                FROM {table} FINAL
                WHERE quantity = 'P_ACTIVE' AND phase = 'TOTAL' AND value IS NOT NULL
                  AND unit IN ('W', 'kW') AND ts >= fromUnixTimestamp64Milli({{since:Int64}})
                GROUP BY entity, device_id, bucket)
            GROUP BY entity, bucket ORDER BY entity, bucket""",
        {"since": src.now_ms - src.window_ms},
    )
    return _by_entity(data, "entity", "bucket", "kw")


def forecast_kw(src: PanelSource) -> dict[str, list[list[float]]]:
    """Latest consumption forecast per entity and step, converted from Wh per step to average kW."""
    table = src.tables["forecasts"]
    data = rows(
        src.client,
        f"""SELECT entity_id, t, argMax(wh, issued_at) / (step_min / 60) / 1000 AS kw FROM (
                SELECT entity_id, issued_at, profile_granularity_minutes AS step_min,
                       JSONExtractInt(p, 'ts') AS t, JSONExtractFloat(p, 'value') AS wh
                FROM {table} FINAL ARRAY JOIN JSONExtractArrayRaw(points) AS p
                WHERE property = 'ENERGY_CONSUMPTION')
            WHERE t BETWEEN {{since:Int64}} AND {{until:Int64}}
            GROUP BY entity_id, t, step_min ORDER BY entity_id, t""",
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
    """Point-wise sum over entities (a timestamp missing for some entity counts as 0 for it)."""
    total: dict[int, float] = defaultdict(float)
    for points in per_entity.values():
        for t, y in points:
            total[int(t)] += y
    return [[t, round(total[t], 4)] for t in sorted(total)]


@panel("load", "Measured vs forecast vs baseline", order=20)
def load(src: PanelSource) -> dict[str, Any]:
    """Active power in kW: measured (15-second averages of the meters), the latest consumption forecast and the
    baseline, for the portfolio and per prosumer."""
    sources = {
        "measured": ("measurements", measured_kw),
        "forecast": ("forecasts", forecast_kw),
        "baseline": ("baselines", baseline_kw),
    }
    curves: dict[str, dict[str, list[list[float]]]] = {}
    notes = []
    for name, (logical, fn) in sources.items():
        table = src.tables[logical]
        if require(src.client, table):
            notes.append(f"{name}: table {table} does not exist yet")
            curves[name] = {}
        else:
            curves[name] = fn(src)
    prosumers = sorted(
        set(curves["measured"]) | set(curves["baseline"]) | (set(curves["forecast"]) - {PORTFOLIO})
    )
    blocks: list[dict[str, Any]] = []
    portfolio = {
        "measured": portfolio_sum(curves["measured"]),
        "forecast": curves["forecast"].get(PORTFOLIO)
        or portfolio_sum({k: v for k, v in curves["forecast"].items() if k != PORTFOLIO}),
        "baseline": portfolio_sum(curves["baseline"]),
    }
    blocks.append(_chart(f"Portfolio ({len(prosumers)} prosumers)", portfolio))
    for p in prosumers[:MAX_PROSUMERS]:
        blocks.append(_chart(p, {name: curves[name].get(p, []) for name in sources}))
    return {"blocks": blocks, "note": "; ".join(notes) or None}


def _chart(title: str, series: dict[str, list[list[float]]]) -> dict[str, Any]:
    return {
        "kind": "series",
        "title": title,
        "unit": "kW",
        "series": [{"name": k, "points": v} for k, v in series.items()],
    }
