"""One P2P market session (one delivery slot): the supply and demand curves of its validated order book, the
clearing price and volume, and its trades. Energy in kWh (Wh in tables), prices in EUR/kWh (micro-units / 1e6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edream.dashboard.pages import NotFound, page, page_href
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource

MAX_ROWS = 500


@dataclass(frozen=True)
class BookOrder:
    """One limit order: ``side`` BID (demand) or OFFER (supply), ``quantity_wh`` > 0, price in EUR/kWh."""

    side: str
    quantity_wh: int
    price_eur_per_kwh: float


def step_curve(orders: Sequence[BookOrder], side: str) -> list[list[float]]:
    """Cumulative quantity (kWh) against limit price (EUR/kWh) as a step curve ``[[kWh, EUR/kWh], ...]``: demand
    (BID) from the highest price down, supply (OFFER) from the lowest up; each step starts at the quantity
    before it, the last point closes the last step at the total quantity."""
    book = sorted(
        (o for o in orders if o.side == side), key=lambda o: o.price_eur_per_kwh, reverse=side == "BID"
    )
    points, total = [], 0
    for o in book:
        points.append([total / 1000, o.price_eur_per_kwh])
        total += o.quantity_wh
    if book:
        points.append([total / 1000, book[-1].price_eur_per_kwh])
    return points


def clearing(src: PanelSource, session_id: str) -> dict[str, Any] | None:
    table = src.tables["market_clearing"]
    if require(src.client, table):
        return None
    data = rows(
        src.client,
        f"""SELECT session_id, toUnixTimestamp64Milli(slot_start) AS slot_ms, toString(rule) AS rule,
                   price_micro_per_kwh, cleared_wh, bid_wh, offer_wh, n_bids, n_offers, n_trades,
                   toUnixTimestamp64Milli(gate_closed_at) AS gate_closed_ms
            FROM {table} FINAL WHERE session_id = {{id:String}} LIMIT 1""",
        {"id": session_id},
    )
    return data[0] if data else None


def book(src: PanelSource, session_id: str) -> list[dict[str, Any]]:
    """The session's validated orders (``market_orders_accepted``; every submitted order when that table is
    absent), best prices first."""
    table = next(
        (
            src.tables[t]
            for t in ("market_orders_accepted", "market_orders")
            if not require(src.client, src.tables[t])
        ),
        None,
    )
    if table is None:
        return []
    return rows(
        src.client,
        f"""SELECT order_id, participant_id, toString(side) AS side, quantity_wh,
                   limit_price_micro_per_kwh / 1e6 AS price_eur_per_kwh
            FROM {table} FINAL WHERE session_id = {{id:String}}
            ORDER BY side, if(side = 'BID', -limit_price_micro_per_kwh, limit_price_micro_per_kwh), order_id
            LIMIT {MAX_ROWS}""",
        {"id": session_id},
    )


def trades(src: PanelSource, session_id: str) -> list[dict[str, Any]]:
    table = src.tables["market_trades"]
    if require(src.client, table):
        return []
    return rows(
        src.client,
        f"""SELECT trade_id, buyer_id, seller_id, quantity_wh, price_micro_per_kwh / 1e6 AS price_eur_per_kwh,
                   buy_order_id, sell_order_id
            FROM {table} FINAL WHERE session_id = {{id:String}} ORDER BY trade_id LIMIT {MAX_ROWS}""",
        {"id": session_id},
    )


@page("slot")
def market_slot_page(src: PanelSource, session_id: str) -> dict[str, Any]:
    result, orders, traded = clearing(src, session_id), book(src, session_id), trades(src, session_id)
    if result is None and not orders:
        raise NotFound(f"no market session {session_id}")
    price = (
        None
        if result is None or result["price_micro_per_kwh"] is None
        else result["price_micro_per_kwh"] / 1e6
    )
    curve_in = [BookOrder(o["side"], int(o["quantity_wh"]), float(o["price_eur_per_kwh"])) for o in orders]
    for t in traded:
        t["buyer_id"], t["seller_id"] = (
            page_href("prosumer", t["buyer_id"]),
            page_href("prosumer", t["seller_id"]),
        )
    for o in orders:
        o["participant_id"] = page_href("prosumer", o["participant_id"])
    cleared_kwh = (result["cleared_wh"] / 1000) if result else 0.0
    return {
        "title": f"Market session {session_id}",
        "subtitle": (
            f"slot starting {result['slot_ms']} (UTC ms), {result['rule']} clearing"
            if result
            else "not cleared yet"
        )
        + "; prices in EUR/kWh, energy in kWh (Wh in tables)",
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {
                        "label": "clearing price",
                        "value": "n/a" if price is None else round(price, 6),
                        "unit": "EUR/kWh",
                    },
                    {"label": "cleared", "value": round(cleared_kwh, 3), "unit": "kWh"},
                    {"label": "bids", "value": sum(o["side"] == "BID" for o in orders)},
                    {"label": "offers", "value": sum(o["side"] == "OFFER" for o in orders)},
                    {"label": "trades", "value": len(traded)},
                    {
                        "label": "traded",
                        "value": round(sum(t["quantity_wh"] for t in traded) / 1000, 3),
                        "unit": "kWh",
                    },
                ],
            },
            {
                "kind": "series",
                "title": "Supply and demand",
                "unit": "EUR/kWh",
                "x_unit": "kWh",
                "step": True,
                "wide": True,
                "series": [
                    {"name": "demand (bids)", "points": step_curve(curve_in, "BID")},
                    {"name": "supply (offers)", "points": step_curve(curve_in, "OFFER")},
                    *(
                        [{"name": "clearing price", "points": [[0.0, price], [cleared_kwh, price]]}]
                        if price is not None
                        else []
                    ),
                ],
            },
            {"kind": "table", "title": "Clearing result", "rows": [result] if result else []},
            {"kind": "table", "title": "Trades (Wh, EUR/kWh)", "rows": traded},
            {"kind": "table", "title": "Order book (Wh, EUR/kWh limit)", "rows": orders},
        ],
    }
