"""Stage health and alerts: every stream stage of every worker (from ``platform.stage.health.v1``), the chain and
ClickHouse, flexibility shortfalls and anchoring progress; what needs an operator is listed first, in red."""

from __future__ import annotations

from typing import Any

from edream.dashboard.alerts import (
    Alert,
    anchoring_alert,
    dependency_alerts,
    shortfall_alerts,
    stage_alerts,
)
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource, panel

#: Deviations of slots that started within this look-back (ms) can raise a shortfall alert.
SHORTFALL_LOOKBACK_MS = 2 * 3_600_000
STAGE_COLUMNS = (
    "stage",
    "worker_id",
    "status",
    "last_error",
    "in_per_s",
    "out_per_s",
    "lag",
    "dead_letters",
    "restarts",
    "updated_at",
)


def order_shortfalls(src: PanelSource) -> list[dict[str, Any]]:
    """Worst slot per order: summed shortfall (target - delivered kW, latest evaluation, FINAL preferred) over the
    prosumers whose verdict is SHORTFALL, for slots in the look-back."""
    table = src.tables["flex_deviations"]
    if src.client is None or require(src.client, table):
        return []
    return rows(
        src.client,
        f"""SELECT order_id, argMax(slot_ms, short_kw) AS slot_ms, round(max(short_kw), 3) AS shortfall_kw FROM (
                SELECT order_id, toUnixTimestamp64Milli(slot_start) AS slot_ms, sum(target - delivered) AS short_kw
                FROM (SELECT order_id, prosumer_id, slot_start,
                             argMax(target_kw, (kind = 'FINAL', ts)) AS target,
                             argMax(delivered_kw, (kind = 'FINAL', ts)) AS delivered,
                             argMax(verdict, (kind = 'FINAL', ts)) AS v
                      FROM {table} FINAL
                      WHERE slot_start >= fromUnixTimestamp64Milli({{since:Int64}})
                      GROUP BY order_id, prosumer_id, slot_start)
                WHERE v = 'SHORTFALL' GROUP BY order_id, slot_ms)
            GROUP BY order_id ORDER BY shortfall_kw DESC""",
        {"since": src.now_ms - SHORTFALL_LOOKBACK_MS},
    )


def anchoring_behind_ms(src: PanelSource) -> int | None:
    """How long (ms) the oldest settlement whose window ended after the newest anchored window has waited since
    its window ended; 0 if every settlement is covered, None if there are no settlements."""
    settle, anchors = src.tables["settlement_flex"], src.tables["chain_anchors"]
    if src.client is None or require(src.client, settle):
        return None
    last_anchor = "0"
    if not require(src.client, anchors):
        last_anchor = f"(SELECT toUnixTimestamp64Milli(max(window_end)) FROM {anchors} FINAL)"
    (r,) = rows(
        src.client,
        f"""SELECT count() AS n, min(toUnixTimestamp64Milli(window_end)) AS oldest FROM {settle} FINAL
            WHERE toUnixTimestamp64Milli(window_end) > {last_anchor}""",
    )
    has_any = rows(src.client, f"SELECT count() > 0 AS any FROM {settle}")[0]["any"]
    if not has_any:
        return None
    return max(0, src.now_ms - int(r["oldest"])) if int(r["n"]) else 0


def stage_rows(src: PanelSource) -> list[dict[str, Any]]:
    return [{k: s.get(k) for k in STAGE_COLUMNS} for s in src.stages]


@panel("health", "Stage health & alerts", order=5, live_without_clickhouse=True)
def health(src: PanelSource) -> dict[str, Any]:
    """Alerts first (stage down or retrying, lag growing, flexibility shortfalls, anchoring behind, chain or
    ClickHouse down), then every stream stage per worker: status, last error, records in/out per second, lag
    (messages), dead letters, restarts, last report (UTC). Stays live while ClickHouse does not answer (without
    the shortfall and anchoring alerts, which need it)."""
    shortfalls = order_shortfalls(src)
    behind = anchoring_behind_ms(src)
    alerts: list[Alert] = [
        *dependency_alerts(src.deps),
        *stage_alerts(src.stages, src.lag_growing),
        *shortfall_alerts(shortfalls),
        *anchoring_alert(behind, src.anchor_allowed_ms),
    ]
    up = sum(1 for s in src.stages if s["status"] == "UP")
    return {
        "blocks": [
            {"kind": "alerts", "title": "Alerts", "alerts": [a.to_dict() for a in alerts]},
            {
                "kind": "stats",
                "stats": [
                    {"label": "stages up", "value": f"{up} of {len(src.stages)}"},
                    {"label": "alerts", "value": len(alerts)},
                    {
                        "label": "anchoring behind",
                        "value": "n/a" if behind is None else round(behind / 60_000, 1),
                        "unit": "min",
                    },
                ],
            },
            {
                "kind": "table",
                "title": "Stages",
                "rows": stage_rows(src),
                "note": None if src.stages else "no stage has reported on platform.stage.health.v1 yet",
            },
            {
                "kind": "table",
                "title": "Dependencies",
                "rows": [
                    {"dependency": k, "status": "UP" if v.get("up") else "DOWN", "detail": v.get("detail")}
                    for k, v in sorted(src.deps.items())
                ],
            },
        ],
        "metrics": {
            "shortfall_kw": {str(r["order_id"]): float(r["shortfall_kw"]) for r in shortfalls},
            "anchoring_behind_s": None if behind is None else behind / 1000,
            "anchoring_allowed_s": src.anchor_allowed_ms / 1000,
            "alerts": [a.name for a in alerts],
        },
    }
