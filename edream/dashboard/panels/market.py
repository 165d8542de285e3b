"""P2P market: clearing price and cleared volume per delivery slot."""

from __future__ import annotations

from typing import Any

from edream.dashboard.pages import page_href
from edream.dashboard.query import missing_note, require, rows
from edream.dashboard.registry import PanelSource, panel

MAX_SLOTS = 96


def clearing_rows(src: PanelSource) -> list[dict[str, Any]]:
    """The newest clearing results, oldest first; price in EUR/kWh (from micro-units), volumes in Wh."""
    table = src.tables["market_clearing"]
    data = rows(
        src.client,
        f"""SELECT session_id, toUnixTimestamp64Milli(slot_start) AS slot_ms, rule,
                   price_micro_per_kwh, cleared_wh, bid_wh, offer_wh, n_trades
            FROM {table} FINAL ORDER BY slot_ms DESC, session_id LIMIT {MAX_SLOTS}""",
    )
    data.reverse()
    for r in data:
        r["rule"] = str(r["rule"])
        p = r["price_micro_per_kwh"]
        r["price_eur_per_kwh"] = None if p is None else round(p / 1e6, 6)
    return data


@panel("market", "Market clearing", order=40)
def market(src: PanelSource) -> dict[str, Any]:
    """Clearing price (EUR/kWh) and cleared volume (Wh) per market slot, with bid and offer volumes."""
    missing = require(src.client, src.tables["market_clearing"])
    if missing:
        return missing_note(missing)
    data = clearing_rows(src)
    priced = [r for r in data if r["price_eur_per_kwh"] is not None]
    return {
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {"label": "slots cleared", "value": len(data)},
                    {
                        "label": "last price",
                        "value": priced[-1]["price_eur_per_kwh"] if priced else "n/a",
                        "unit": "EUR/kWh",
                    },
                    {"label": "volume", "value": sum(int(r["cleared_wh"]) for r in data), "unit": "Wh"},
                ],
            },
            {
                "kind": "series",
                "title": "Clearing price",
                "unit": "EUR/kWh",
                "step": True,
                "series": [
                    {"name": "price", "points": [[r["slot_ms"], r["price_eur_per_kwh"]] for r in priced]}
                ],
            },
            {
                "kind": "series",
                "title": "Volumes",
                "unit": "Wh",
                "step": True,
                "series": [
                    {"name": name, "points": [[r["slot_ms"], r[col]] for r in data]}
                    for name, col in (("cleared", "cleared_wh"), ("bids", "bid_wh"), ("offers", "offer_wh"))
                ],
            },
            {
                "kind": "table",
                "title": "Latest slots",
                "rows": [{**r, "session_id": page_href("slot", r["session_id"])} for r in data[-8:][::-1]],
            },
        ]
    }
