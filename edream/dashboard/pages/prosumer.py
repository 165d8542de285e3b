"""One prosumer: its measured load (its meters held on the portfolio's grid), the latest net forecast with its
prediction interval, the baseline, the flexibility orders that allocate to it, its settlements and the commands
sent to its devices. Power in kW, energy in Wh, money in currency units, times UTC epoch ms."""

from __future__ import annotations

from typing import Any

from edream.dashboard.grid import GridSum, grid_sum
from edream.dashboard.pages import NotFound, money, page, page_href
from edream.dashboard.panels.load import (
    STALE_AFTER_MS,
    from_first_reading,
    measured_grid,
    meter_samples,
)
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource

MAX_ROWS = 200


def measured(src: PanelSource, prosumer_id: str) -> GridSum:
    """The prosumer's measured kW: each of its meters' newest reading held on the dashboard's grid, summed."""
    if require(src.client, src.tables["measurements"]):
        return GridSum([], [], 0)
    grid = measured_grid(src)
    samples = meter_samples(src, grid, prosumer=prosumer_id).samples
    return grid_sum(samples, from_first_reading(grid, samples), STALE_AFTER_MS)


def forecast_band(src: PanelSource, prosumer_id: str) -> list[dict[str, Any]]:
    """Latest net forecast per step (consumption minus production, as the meters measure net power: import
    positive) as average kW (from Wh per step), over the look-back window and as far ahead. Its interval: consumption
    lower minus production upper, and the reverse (kW, None when a model gave none); no production forecast counts
    as producing nothing."""
    table = src.tables["forecasts"]
    if require(src.client, table):
        return []
    prod = "if(countIf(NOT c) = 0, 0, argMaxIf({x}, issued_at, NOT c))"
    # kW per point (Wh over its own step), so that the latest issue wins at a time two profile granularities share
    return rows(
        src.client,
        f"""SELECT t, round(argMaxIf(kw, issued_at, c) - {prod.format(x="kw")}, 4) AS kw,
                   round(argMaxIf(lo, issued_at, c) - {prod.format(x="hi")}, 4) AS lower_kw,
                   round(argMaxIf(hi, issued_at, c) - {prod.format(x="lo")}, 4) AS upper_kw
            FROM (SELECT issued_at, property = 'ENERGY_CONSUMPTION' AS c, 60 / profile_granularity_minutes / 1000 AS k,
                         JSONExtractInt(p, 'ts') AS t, JSONExtractFloat(p, 'value') * k AS kw,
                         JSONExtract(p, 'lower', 'Nullable(Float64)') * k AS lo,
                         JSONExtract(p, 'upper', 'Nullable(Float64)') * k AS hi
                  FROM {table} FINAL ARRAY JOIN JSONExtractArrayRaw(points) AS p
                  WHERE property IN ('ENERGY_CONSUMPTION', 'ENERGY_PRODUCTION') AND entity_id = {{id:String}})
            WHERE t BETWEEN {{since:Int64}} AND {{until:Int64}}
            GROUP BY t HAVING countIf(c) > 0 ORDER BY t""",
        {"id": prosumer_id, "since": src.now_ms - src.window_ms, "until": src.now_ms + src.window_ms},
    )


def baseline(src: PanelSource, prosumer_id: str) -> list[list[float]]:
    """Baseline + adjustment (kW) per settlement period, latest version, ``[[t_ms, kW]]``."""
    table = src.tables["baselines"]
    if require(src.client, table):
        return []
    data = rows(
        src.client,
        f"""SELECT toUnixTimestamp64Milli(isp_start) AS t, round(argMax(baseline_kw + adjustment_kw, version), 4) AS kw
            FROM {table} WHERE prosumer_id = {{id:String}}
              AND isp_start BETWEEN fromUnixTimestamp64Milli({{since:Int64}}) AND fromUnixTimestamp64Milli({{until:Int64}})
            GROUP BY t ORDER BY t""",
        {"id": prosumer_id, "since": src.now_ms - src.window_ms, "until": src.now_ms + src.window_ms},
    )
    return [[r["t"], r["kw"]] for r in data]


def orders(src: PanelSource, prosumer_id: str) -> list[dict[str, Any]]:
    """Flexibility orders whose latest revision allocates to the prosumer: its slots and kW summed over them."""
    table = src.tables["flex_orders"]
    if require(src.client, table):
        return []
    data = rows(
        src.client,
        f"""SELECT order_id, revision, status, direction, toUnixTimestamp64Milli(created_at) AS created_ms,
                   length(mine) AS slots, round(arraySum(arrayMap(a -> JSONExtractFloat(a, 'kw'), mine)), 3) AS kw_over_slots
            FROM (SELECT *, arrayFilter(a -> JSONExtractString(a, 'prosumer_id') = {{id:String}},
                                        JSONExtractArrayRaw(allocations)) AS mine
                  FROM {table} FINAL ORDER BY order_id, revision DESC LIMIT 1 BY order_id)
            WHERE length(mine) > 0 ORDER BY created_ms DESC, order_id LIMIT {MAX_ROWS}""",
        {"id": prosumer_id},
    )
    for r in data:
        r["order_id"] = page_href("order", r["order_id"])
        r["status"], r["direction"] = str(r["status"]), str(r["direction"])
    return data


def settlements(src: PanelSource, prosumer_id: str) -> list[dict[str, Any]]:
    """The prosumer's flexibility and market settlements, newest window first; amount in currency units."""
    parts = [
        f"""SELECT kind, settlement_id, window_id, toUnixTimestamp64Milli(window_start) AS window_start_ms,
                   reference_id, quantity_wh, amount_micro / 1e6 AS amount, currency
            FROM {src.tables[logical]} FINAL WHERE party_id = {{id:String}}"""
        for logical in ("settlement_flex", "market_settlement")
        if not require(src.client, src.tables[logical])
    ]
    if not parts:
        return []
    data = rows(
        src.client,
        f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY window_start_ms DESC, settlement_id LIMIT {MAX_ROWS}",
        {"id": prosumer_id},
    )
    for r in data:
        r["kind"] = str(r["kind"])
        if r["kind"] == "FLEX":
            r["reference_id"] = page_href("order", r["reference_id"])
    return data


def device_commands(src: PanelSource, prosumer_id: str) -> list[dict[str, Any]]:
    """Commands sent to the prosumer's devices, newest first, with the device's latest answer (if any)."""
    cmds, results = src.tables["device_commands"], src.tables["device_command_results"]
    if require(src.client, cmds):
        return []
    have_results = not require(src.client, results)
    join = (
        f"""LEFT JOIN (SELECT command_id, argMax(status, executed_at) AS result, argMax(detail, executed_at) AS detail
                       FROM {results} GROUP BY command_id) AS r USING (command_id)"""
        if have_results
        else ""
    )
    data = rows(
        src.client,
        f"""SELECT c.command_id AS command_id, c.device_id AS device_id, c.action AS action, c.value AS value,
                   toUnixTimestamp64Milli(c.valid_from) AS valid_from_ms, c.source AS source, c.reason AS reason,
                   {"toString(r.result) AS result, r.detail AS detail" if have_results else "'' AS result, '' AS detail"}
            FROM (SELECT * FROM {cmds} FINAL WHERE prosumer_id = {{id:String}}) AS c {join}
            ORDER BY valid_from_ms DESC, command_id LIMIT {MAX_ROWS}""",
        {"id": prosumer_id},
    )
    for r in data:
        r["action"] = str(r["action"])
        r["result"] = r["result"] or "PENDING"
    return data


@page("prosumer")
def prosumer_page(src: PanelSource, prosumer_id: str) -> dict[str, Any]:
    load = measured(src, prosumer_id)
    band = forecast_band(src, prosumer_id)
    base = baseline(src, prosumer_id)
    ordered, settled, commands = (
        orders(src, prosumer_id),
        settlements(src, prosumer_id),
        device_commands(src, prosumer_id),
    )
    if not (load.meters or band or base or ordered or settled or commands):
        raise NotFound(
            f"no prosumer {prosumer_id}: no readings, forecast, baseline, order, settlement or command"
        )
    now_kw = next((p[1] for p in reversed(load.points) if p[1] is not None), None)
    currency = settled[0]["currency"] if settled else ""
    return {
        "title": f"Prosumer {prosumer_id}",
        "subtitle": "power in kW (meters' newest readings held for at most "
        f"{STALE_AFTER_MS // 1000} s), energy in Wh; all times UTC",
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {"label": "meters reporting", "value": f"{load.reporting_now} of {load.meters}"},
                    {
                        "label": "load now",
                        "value": "n/a" if now_kw is None else round(now_kw, 3),
                        "unit": "kW",
                    },
                    {"label": "orders", "value": len(ordered)},
                    {
                        "label": "settled",
                        "value": money(sum(r["amount"] for r in settled)),
                        "unit": currency,
                    },
                    {"label": "device commands", "value": len(commands)},
                ],
            },
            {
                "kind": "series",
                "title": "Measured vs forecast vs baseline",
                "unit": "kW",
                "wide": True,
                "band": ["forecast upper", "forecast lower"],
                "series": [
                    {"name": "measured", "points": load.points},
                    {"name": "forecast", "points": [[r["t"], r["kw"]] for r in band]},
                    {"name": "forecast upper", "points": [[r["t"], r["upper_kw"]] for r in band]},
                    {"name": "forecast lower", "points": [[r["t"], r["lower_kw"]] for r in band]},
                    {"name": "baseline", "points": base},
                ],
                "reporting": load.reporting,
            },
            {
                "kind": "table",
                "title": "Flexibility orders (latest revision, this prosumer's part)",
                "rows": ordered,
            },
            {
                "kind": "table",
                "title": "Settlements (amount in currency units, negative = penalty)",
                "rows": settled,
            },
            {"kind": "table", "title": "Device commands (newest first)", "rows": commands},
        ],
    }
