"""Grid congestion: forecast loading (%) per congestion point and 15-minute slot as a heat map (the DSO's view of
``grid.congestion.v1``), with the overloaded slots listed, and the proof of relief of the ordered slots
(``grid.relief.v1``, :mod:`edream.dashboard.panels.grid_relief`)."""

from __future__ import annotations

from typing import Any

from edream.dashboard.panels.grid_relief import relief_blocks
from edream.dashboard.query import missing_note, require, rows
from edream.dashboard.registry import PanelSource, panel

SLOT_MS = 900_000
HORIZON_SLOTS = 96
MAX_POINTS = 20


def loading_rows(src: PanelSource) -> list[dict[str, Any]]:
    """Per congestion point and slot from the current quarter hour on (at most a day): the latest forecast's
    loading (%), limit, overload (kW), convergence and missing-forecast count."""
    first = src.now_ms - src.now_ms % SLOT_MS
    return rows(
        src.client,
        f"""SELECT congestion_point_id AS point, toUnixTimestamp64Milli(slot_start) AS t,
                   argMax(loading_percent, forecast_issued_at) AS loading,
                   argMax(max_loading_percent, forecast_issued_at) AS limit_pct,
                   argMax(overload_kw, forecast_issued_at) AS overload_kw,
                   argMax(converged, forecast_issued_at) AS converged,
                   argMax(missing_forecasts, forecast_issued_at) AS missing
            FROM {src.tables["grid_congestion"]} FINAL
            WHERE slot_start >= fromUnixTimestamp64Milli({{since:Int64}})
              AND slot_start < fromUnixTimestamp64Milli({{until:Int64}})
            GROUP BY point, t ORDER BY point, t""",
        {"since": first, "until": first + HORIZON_SLOTS * SLOT_MS},
    )


def heatmap(data: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``heatmap`` block: one row per point, one column per slot (UTC epoch ms), loading % (None: no figure,
    the power flow did not converge or no forecast covers the slot), the limit per row."""
    points = sorted({r["point"] for r in data})
    slots = sorted({int(r["t"]) for r in data})
    col = {t: i for i, t in enumerate(slots)}
    values: list[list[float | None]] = [[None] * len(slots) for _ in points]
    limits = dict.fromkeys(points, 100.0)
    for r in data:
        i = points.index(r["point"])
        ok = r["converged"] and r["loading"] is not None
        values[i][col[int(r["t"])]] = round(float(r["loading"]), 1) if ok else None
        limits[r["point"]] = float(r["limit_pct"])
    return {
        "kind": "heatmap",
        "title": "Forecast loading per congestion point and slot",
        "unit": "%",
        "rows": points,
        "cols": slots,
        "values": values,
        "limits": [limits[p] for p in points],
    }


@panel("grid", "Grid congestion", order=35)
def grid(src: PanelSource) -> dict[str, Any]:
    """Forecast loading of each congestion point (transformer, line) per 15-minute slot for the next day from the
    grid stage's power flows: red above the point's limit; slots with prosumers lacking a forecast (counted as
    0 kW) or a failed power flow are listed; for the slots flexibility was ordered in, the loading before the orders,
    expected with them and measured after delivery, with the verdict (relieved, partially, not)."""
    missing = require(src.client, src.tables["grid_congestion"])
    if missing:
        return missing_note(missing)
    data = loading_rows(src)
    flagged = [
        {
            "point": r["point"],
            "slot_ms": int(r["t"]),
            "loading_pct": round(float(r["loading"]), 1) if r["loading"] is not None else None,
            "overload_kw": round(float(r["overload_kw"]), 1),
            "flag": "OVERLOAD"
            if r["converged"] and float(r["overload_kw"]) > 0
            else ("NOT CONVERGED" if not r["converged"] else "MISSING FORECASTS"),
            "missing_forecasts": int(r["missing"]),
        }
        for r in data
        if not r["converged"] or float(r["overload_kw"]) > 0 or int(r["missing"]) > 0
    ][:MAX_POINTS]
    overloaded = sum(1 for r in data if r["converged"] and float(r["overload_kw"]) > 0)
    stats = {
        "kind": "stats",
        "stats": [
            {"label": "congestion points", "value": len({r["point"] for r in data})},
            {"label": "overloaded slots", "value": overloaded},
            {
                "label": "peak loading",
                "value": max(
                    (round(float(r["loading"]), 1) for r in data if r["loading"] is not None), default=0
                ),
                "unit": "%",
            },
        ],
    }
    relief_stats, relief = relief_blocks(src)
    stats["stats"] += relief_stats
    flagged_table = {"kind": "table", "title": "Flagged slots", "rows": flagged}
    return {"blocks": [stats, heatmap(data), flagged_table, *relief]}
