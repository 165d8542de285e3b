"""Flexibility orders with delivery progress, and deviations (target vs delivered kW) per slot."""

from __future__ import annotations

from typing import Any

from edream.dashboard.pages import page_href
from edream.dashboard.query import missing_note, require, rows
from edream.dashboard.registry import PanelSource, panel

MAX_ORDERS = 20


def order_rows(src: PanelSource) -> list[dict[str, Any]]:
    """Latest revision of the newest orders with slots delivered (FINAL verdicts) out of slots ordered."""
    orders, devs = src.tables["flex_orders"], src.tables["flex_deviations"]
    have_devs = not require(src.client, devs)
    dev_join = (
        f"""LEFT JOIN (
                SELECT order_id, uniqExactIf(slot_start, kind = 'FINAL') AS slots_final,
                       countIf(kind = 'FINAL' AND verdict = 'WITHIN') AS within,
                       countIf(kind = 'FINAL' AND verdict = 'SHORTFALL') AS shortfall,
                       countIf(kind = 'FINAL' AND verdict = 'OVERDELIVERY') AS overdelivery,
                       countIf(kind = 'PROJECTED' AND verdict != 'WITHIN') AS projected_alerts
                FROM {devs} FINAL GROUP BY order_id) AS d USING (order_id)"""
        if have_devs
        else ""
    )
    dev_cols = (
        "d.slots_final AS slots_final, d.within AS within, d.shortfall AS shortfall, "
        "d.overdelivery AS overdelivery, d.projected_alerts AS projected_alerts"
        if have_devs
        else "0 AS slots_final, 0 AS within, 0 AS shortfall, 0 AS overdelivery, 0 AS projected_alerts"
    )
    data = rows(
        src.client,
        f"""SELECT o.order_id AS order_id, o.request_id AS request_id, o.direction AS direction,
                   o.status AS status, o.revision AS revision,
                   length(arrayDistinct(arrayMap(a -> JSONExtractInt(a, 'slot_start'),
                          JSONExtractArrayRaw(o.allocations)))) AS slots,
                   round(arraySum(arrayMap(a -> JSONExtractFloat(a, 'kw'),
                          JSONExtractArrayRaw(o.allocations))), 3) AS ordered_kw_slots,
                   toUnixTimestamp64Milli(o.created_at) AS created_ms, {dev_cols}
            FROM (SELECT * FROM {orders} FINAL ORDER BY order_id, revision DESC LIMIT 1 BY order_id) AS o
            {dev_join}
            ORDER BY created_ms DESC, order_id LIMIT {MAX_ORDERS}""",
    )
    for r in data:
        r["order_id"] = page_href("order", r["order_id"])  # the order's drill-down page
        r["direction"], r["status"] = str(r["direction"]), str(r["status"])
        r["progress_pct"] = round(100 * int(r["slots_final"]) / int(r["slots"]), 1) if r["slots"] else 0.0
    return data


def deviation_series(src: PanelSource) -> list[dict[str, Any]]:
    """Target vs delivered kW summed over prosumers per slot (latest evaluation of each slot)."""
    devs = src.tables["flex_deviations"]
    data = rows(
        src.client,
        f"""SELECT toUnixTimestamp64Milli(slot_start) AS t, sum(target) AS target_kw, sum(delivered) AS delivered_kw
            FROM (SELECT order_id, prosumer_id, slot_start, argMax(target_kw, (kind = 'FINAL', ts)) AS target,
                         argMax(delivered_kw, (kind = 'FINAL', ts)) AS delivered
                  FROM {devs} FINAL GROUP BY order_id, prosumer_id, slot_start)
            GROUP BY t ORDER BY t DESC LIMIT 96""",
    )
    data.reverse()
    return [
        {"name": "target", "points": [[r["t"], round(float(r["target_kw"]), 3)] for r in data]},
        {"name": "delivered", "points": [[r["t"], round(float(r["delivered_kw"]), 3)] for r in data]},
    ]


@panel("flex", "Flexibility orders & deviations", order=30)
def flex(src: PanelSource) -> dict[str, Any]:
    """DSO flexibility orders (latest revision) with delivery progress = slots with a FINAL verdict / slots
    ordered, and target vs delivered flexibility (kW) per slot."""
    missing = require(src.client, src.tables["flex_orders"])
    if missing:
        return missing_note(missing)
    blocks: list[dict[str, Any]] = [{"kind": "table", "title": "Orders", "rows": order_rows(src)}]
    if not require(src.client, src.tables["flex_deviations"]):
        blocks.append(
            {
                "kind": "series",
                "title": "Flexibility per slot",
                "unit": "kW",
                "series": deviation_series(src),
                "step": True,
            }
        )
    return {"blocks": blocks}
