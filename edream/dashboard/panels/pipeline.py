"""Pipeline health: per-agent throughput, consumer lag, dead letters, connector device status."""

from __future__ import annotations

from typing import Any

from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource, panel

#: A device whose newest reading is older than this is shown as STALE (ms).
STALE_AFTER_MS = 60_000


def agent_rows(counters: dict[str, int] | Any, rates: dict[str, float] | Any) -> list[dict[str, Any]]:
    """One row per counter (``sink.<name>.rows``, ``dlq.<name>``, ...): total and events/s."""
    return [
        {"counter": name, "total": int(total), "per_s": round(float(rates.get(name, 0.0)), 2)}
        for name, total in sorted(counters.items())
    ]


def dead_letter_total(counters: dict[str, int] | Any) -> int:
    """Dead letters written by this process (counters named ``dlq.*``)."""
    return sum(int(v) for k, v in counters.items() if k.startswith("dlq."))


def connector_rows(src: PanelSource) -> tuple[list[dict[str, Any]], str | None]:
    """Per connector: devices seen in the look-back window, how many are fresh, newest reading age (s)."""
    table = src.tables["measurements"]
    if require(src.client, table):
        return [], f"table {table} does not exist yet"
    data = rows(
        src.client,
        f"""SELECT connector_id, source_protocol, count() AS readings, uniqExact(device_id) AS devices,
                   uniqExactIf(device_id, ts >= fromUnixTimestamp64Milli({{fresh:Int64}})) AS fresh_devices,
                   toUnixTimestamp64Milli(max(ts)) AS last_ts
            FROM {table}
            WHERE ts >= fromUnixTimestamp64Milli({{since:Int64}})
            GROUP BY connector_id, source_protocol ORDER BY connector_id""",
        {"since": src.now_ms - src.window_ms, "fresh": src.now_ms - STALE_AFTER_MS},
    )
    for r in data:
        r["source_protocol"] = str(r["source_protocol"])
        r["age_s"] = round(max(0, src.now_ms - int(r["last_ts"])) / 1000, 1)
        r["status"] = (
            "OK"
            if r["fresh_devices"] == r["devices"]
            else ("STALE" if r["fresh_devices"] == 0 else "PARTIAL")
        )
    return data, None


def dead_letter_rows(src: PanelSource) -> tuple[list[dict[str, Any]], str | None]:
    """Dead letters stored in ClickHouse per source topic and stage (all processes, not just this one)."""
    table = src.tables["deadletters"]
    if require(src.client, table):
        return [], f"table {table} does not exist yet"
    data = rows(
        src.client,
        f"""SELECT source_topic, stage, count() AS letters, toUnixTimestamp64Milli(max(failed_at)) AS last_ms,
                   argMax(error, failed_at) AS last_error
            FROM {table} FINAL GROUP BY source_topic, stage ORDER BY letters DESC LIMIT 20""",
    )
    return data, None


@panel("pipeline", "Pipeline health", order=10)
def pipeline(src: PanelSource) -> dict[str, Any]:
    """Events per second per agent (from the worker's counters), consumer-group lag per topic, dead letters
    and which connectors' devices are reporting."""
    lag_total = src.lag.get("total")
    connectors, conn_note = connector_rows(src)
    stats = [
        {"label": "rows sunk", "value": sum(v for k, v in src.counters.items() if k.endswith(".rows"))},
        {
            "label": "events/s",
            "value": round(sum(src.rates.get(k, 0.0) for k in src.counters if k.endswith(".rows")), 2),
        },
        {"label": "consumer lag", "value": lag_total if lag_total is not None else "n/a", "unit": "msgs"},
        {"label": "dead letters", "value": dead_letter_total(src.counters)},
        {"label": "devices reporting", "value": sum(int(c["fresh_devices"]) for c in connectors)},
    ]
    letters, dl_note = dead_letter_rows(src)
    lag_rows = [{"topic": t, "lag": n} for t, n in sorted((src.lag.get("by_topic") or {}).items())]
    blocks: list[dict[str, Any]] = [
        {"kind": "stats", "stats": stats},
        {"kind": "table", "title": "Agents", "rows": agent_rows(src.counters, src.rates)},
        {"kind": "table", "title": "Consumer lag", "rows": lag_rows, "note": src.lag.get("error")},
        {"kind": "table", "title": "Connectors", "rows": connectors, "note": conn_note},
        {"kind": "table", "title": "Dead letters", "rows": letters, "note": dl_note},
    ]
    return {"blocks": blocks}
