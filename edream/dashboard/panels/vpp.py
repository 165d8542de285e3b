"""Virtual power plant: exportable capacity per 30-minute window and the latest capability answers."""

from __future__ import annotations

from typing import Any

from edream.dashboard.query import missing_note, require, rows
from edream.dashboard.registry import PanelSource, panel

MAX_WINDOWS = 96
MAX_ANSWERS = 8


def export_rows(src: PanelSource) -> list[dict[str, Any]]:
    """The latest evaluation of each (VPP, window), oldest window first; kW, prices in EUR/kWh."""
    table = src.tables["vpp_export"]
    data = rows(
        src.client,
        f"""SELECT vpp_id, toUnixTimestamp64Milli(slot_start) AS slot_ms,
                   toUnixTimestamp64Milli(max(evaluated_at)) AS evaluated_ms,
                   argMax(export_p50_kw, evaluated_at) AS p50_kw,
                   argMax(export_p10_kw, evaluated_at) AS p10_kw,
                   argMax(offered_kw, evaluated_at) AS offered_kw,
                   argMax(decision, evaluated_at) AS decision,
                   argMax(price_forecast_micro, evaluated_at) AS price_micro,
                   argMax(threshold_micro, evaluated_at) AS threshold_micro
            FROM {table} FINAL GROUP BY vpp_id, slot_ms ORDER BY slot_ms DESC, vpp_id LIMIT {MAX_WINDOWS}""",
    )
    data.reverse()
    for r in data:
        r["decision"] = str(r["decision"])
        for k in ("p50_kw", "p10_kw", "offered_kw"):
            r[k] = round(float(r[k]), 3)
        r["price_eur_per_kwh"] = round(r.pop("price_micro") / 1e6, 6)
        r["threshold_eur_per_kwh"] = round(r.pop("threshold_micro") / 1e6, 6)
    return data


def capability_rows(src: PanelSource) -> list[dict[str, Any]]:
    """The newest capability answers first; capacity in kW (firm over the requested window)."""
    table = src.tables["vpp_capability"]
    data = rows(
        src.client,
        f"""SELECT request_id, vpp_id, service, feasible, round(capacity_kw, 3) AS capacity_kw,
                   shortfall_reason, length(JSONExtractArrayRaw(assignments)) AS assets,
                   toUnixTimestamp64Milli(computed_at) AS computed_ms
            FROM {table} FINAL ORDER BY computed_ms DESC, request_id LIMIT {MAX_ANSWERS}""",
    )
    for r in data:
        r["feasible"] = bool(r["feasible"])
    return data


def _series(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    vpps = sorted({r["vpp_id"] for r in data})
    metrics = (("offered", "offered_kw"), ("P50", "p50_kw"), ("firm P10", "p10_kw"))
    if len(vpps) > 1:  # one line per VPP (offered), so the chart stays readable
        metrics = metrics[:1]
    return [
        {
            "name": name if len(vpps) == 1 else f"{vpp} {name}",
            "points": [[r["slot_ms"], r[col]] for r in data if r["vpp_id"] == vpp],
        }
        for vpp in vpps
        for name, col in metrics
    ]


@panel("vpp", "Virtual power plant", order=60)
def vpp(src: PanelSource) -> dict[str, Any]:
    """Exportable capacity per 30-minute trading window (latest evaluation, kW: offered, median and firm), the
    price threshold, and the latest reserve/frequency capability answers (``edream vpp capability``)."""
    export_t, cap_t = src.tables["vpp_export"], src.tables["vpp_capability"]
    missing = require(src.client, export_t, cap_t)
    if len(missing) == 2:
        return missing_note(missing)
    exports = [] if export_t in missing else export_rows(src)
    answers = [] if cap_t in missing else capability_rows(src)
    last = exports[-1] if exports else None
    blocks: list[dict[str, Any]] = [
        {
            "kind": "stats",
            "stats": [
                {"label": "windows evaluated", "value": len(exports)},
                {
                    "label": "next window offered",
                    "value": last["offered_kw"] if last else "n/a",
                    "unit": "kW",
                },
                {"label": "decision", "value": last["decision"] if last else "n/a"},
                {
                    "label": "price threshold",
                    "value": last["threshold_eur_per_kwh"] if last else "n/a",
                    "unit": "EUR/kWh",
                },
                {"label": "capability answers", "value": len(answers)},
            ],
        },
        {
            "kind": "series",
            "title": "Export capacity per 30-min window",
            "unit": "kW",
            "step": True,
            "series": _series(exports),
        },
        {"kind": "table", "title": "Latest export windows", "rows": exports[-6:][::-1]},
        {"kind": "table", "title": "Capability answers", "rows": answers},
    ]
    return {"blocks": blocks, **({"note": f"no table(s) {', '.join(missing)} yet"} if missing else {})}
