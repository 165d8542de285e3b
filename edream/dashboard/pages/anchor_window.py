"""One anchored settlement window (key ``KIND/window_id``, e.g. ``FLEX/2026-11-23T10:15Z/15m``): the records
hashed into it (the anchor manifest joined with the settlement rows), its Merkle root, the chain transaction, and
the verification of the window against the chain. Energy in Wh, money in currency units, times UTC epoch ms."""

from __future__ import annotations

from typing import Any

from edream.dashboard.pages import NotFound, money, page, page_href
from edream.dashboard.panels.anchoring import verify_link
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource

#: The settlement table (logical name) of each anchored kind.
SETTLEMENTS = {"FLEX": "settlement_flex", "MARKET": "market_settlement"}
MAX_RECORDS = 1000


def receipt(src: PanelSource, kind: str, window_id: str) -> dict[str, Any] | None:
    table = src.tables["chain_anchors"]
    if require(src.client, table):
        return None
    data = rows(
        src.client,
        f"""SELECT kind, window_id, toUnixTimestamp64Milli(window_start) AS window_start_ms,
                   toUnixTimestamp64Milli(window_end) AS window_end_ms, merkle_root, record_count, chain_id,
                   contract_address, tx_hash, block_number, confirmations, gas_used,
                   toUnixTimestamp64Milli(anchored_at) AS anchored_ms
            FROM {table} FINAL WHERE kind = {{kind:String}} AND window_id = {{window:String}} LIMIT 1""",
        {"kind": kind, "window": window_id},
    )
    return data[0] if data else None


def records(src: PanelSource, kind: str, window_id: str) -> list[dict[str, Any]]:
    """The manifest's leaves with their settlement rows (party, reference, Wh, amount); a leaf without a row is
    listed with empty settlement columns (verification then names it missing)."""
    leaves = src.tables["chain_anchor_leaves"]
    if require(src.client, leaves):
        return []
    settlement = src.tables.get(SETTLEMENTS.get(kind, ""), "")
    if settlement and not require(src.client, settlement):
        cols = "s.party_id AS party_id, s.reference_id AS reference_id, s.quantity_wh AS quantity_wh, "
        cols += "s.amount_micro / 1e6 AS amount, s.currency AS currency"
        join = f"LEFT JOIN (SELECT * FROM {settlement} FINAL) AS s ON s.settlement_id = l.settlement_id"
    else:
        cols, join = "'' AS party_id, '' AS reference_id, 0 AS quantity_wh, 0.0 AS amount, '' AS currency", ""
    data = rows(
        src.client,
        f"""SELECT l.settlement_id AS settlement_id, {cols}, l.leaf AS leaf
            FROM (SELECT * FROM {leaves} FINAL WHERE kind = {{kind:String}} AND window_id = {{window:String}}) AS l
            {join} ORDER BY settlement_id LIMIT {MAX_RECORDS}""",
        {"kind": kind, "window": window_id},
    )
    for r in data:
        if r["party_id"]:
            r["party_id"] = page_href("prosumer", r["party_id"])
        if kind == "FLEX" and r["reference_id"]:
            r["reference_id"] = page_href("order", r["reference_id"])
    return data


@page("anchor")
def anchor_window_page(src: PanelSource, key: str) -> dict[str, Any]:
    kind, _, window_id = key.partition("/")
    if not window_id:
        raise NotFound(f"anchor window key {key!r}: expected KIND/window_id, e.g. FLEX/2026-11-23T10:15Z/15m")
    rec = receipt(src, kind, window_id)
    if rec is None:
        raise NotFound(f"no anchor of {kind} window {window_id}")
    leaves = records(src, kind, window_id)
    currency = next((r["currency"] for r in leaves if r["currency"]), "")
    url = verify_link(kind, window_id)
    return {
        "title": f"Anchor {kind} {window_id}",
        "subtitle": f"Merkle root {rec['merkle_root']}; all times UTC",
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {"label": "records on chain", "value": rec["record_count"]},
                    {"label": "records in manifest", "value": len(leaves)},
                    {"label": "block", "value": rec["block_number"]},
                    {"label": "confirmations", "value": rec["confirmations"]},
                    {
                        "label": "amount",
                        "value": money(sum(r["amount"] or 0 for r in leaves)),
                        "unit": currency,
                    },
                ],
            },
            {"kind": "verify", "title": "Verification against the chain", "url": url},
            {
                "kind": "table",
                "title": "Chain transaction",
                "rows": [{**rec, "verify": {"href": url, "text": "verify"}}],
            },
            {"kind": "table", "title": "Records (settlements hashed into the root)", "rows": leaves},
        ],
    }
