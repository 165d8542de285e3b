"""The proof of relief in the grid panel (``grid.relief.v1``, table ``grid_relief``): per congestion point and ordered
slot the loading before the orders, expected with them and measured after delivery, with the verdict, so the DSO
sees what it paid for. Helpers of :mod:`edream.dashboard.panels.grid` (no panel of its own)."""

from __future__ import annotations

from typing import Any

from edream.dashboard.query import require, rows

SLOT_MS = 900_000
#: slots shown: those that ended up to a day ago and those ahead (orders reach a day ahead at most)
LOOKBACK_MS = 24 * 3_600_000
MAX_ROWS = 40
#: verdicts counted in the panel's stats, in display order
COUNTED = ("RELIEVED", "PARTIALLY_RELIEVED", "NOT_RELIEVED", "PENDING")


def relief_rows(src: Any) -> list[dict[str, Any]]:
    """The latest record (highest ``version``) per point and slot from a day ago on, newest slots first."""
    return rows(
        src.client,
        f"""SELECT congestion_point_id AS point, toUnixTimestamp64Milli(slot_start) AS t, phase, verdict,
                   loading_before_percent AS before, loading_expected_percent AS expected,
                   loading_measured_percent AS measured, max_loading_percent AS limit_pct,
                   overload_measured_kw, ordered_kw, orders, missing_meters, prosumers
            FROM {src.tables["grid_relief"]} FINAL
            WHERE slot_start >= fromUnixTimestamp64Milli({{since:Int64}})
            ORDER BY t DESC, point LIMIT {MAX_ROWS}""",
        {"since": src.now_ms - src.now_ms % SLOT_MS - LOOKBACK_MS},
    )


def _pct(v: float | None) -> float | None:
    return None if v is None else round(float(v), 1)


def relief_blocks(src: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stats, blocks): the verdict counts for the panel's stats and the "Proof of relief" table; nothing when the
    table does not exist (no grid stage with proof of relief has written yet)."""
    if require(src.client, src.tables["grid_relief"]):
        return [], []
    data = relief_rows(src)
    table = [
        {
            "point": r["point"],
            "slot_ms": int(r["t"]),
            "phase": r["phase"],
            "verdict": r["verdict"],
            "before_pct": _pct(r["before"]),
            "expected_pct": _pct(r["expected"]),
            "measured_pct": _pct(r["measured"]),
            "limit_pct": _pct(r["limit_pct"]),
            "ordered_kw": round(float(r["ordered_kw"]), 1),
            "orders": int(r["orders"]),
            "missing_meters": int(r["missing_meters"]),
        }
        for r in data
    ]
    stats = [
        {"label": f"slots {v.lower().replace('_', ' ')}", "value": sum(1 for r in data if r["verdict"] == v)}
        for v in COUNTED
    ]
    block = {
        "kind": "table",
        "title": "Proof of relief (loading %: before the orders, expected with them, measured after delivery)",
        "rows": table,
    }
    return stats, [block]
