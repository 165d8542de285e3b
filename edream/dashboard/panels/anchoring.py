"""Anchoring status: settlement windows anchored on-chain, confirmations, and links to verify them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from edream.dashboard.pages import page_href
from edream.dashboard.query import missing_note, require, rows
from edream.dashboard.registry import PanelSource, panel

MAX_ANCHORS = 20


def anchor_href(kind: str, window_id: str) -> dict[str, str]:
    """A table cell linking to the anchor window's page (key ``KIND/window_id``), showing the window id."""
    return {**page_href("anchor", f"{kind}/{window_id}"), "text": window_id}


def verify_link(kind: str, window_id: str) -> str:
    """The dashboard's verification endpoint for one window (recomputes the Merkle root, reads the chain)."""
    return f"/api/verify?kind={quote(kind)}&window={quote(window_id, safe='')}"


@panel("anchoring", "Anchoring", order=50)
def anchoring(src: PanelSource) -> dict[str, Any]:
    """Merkle roots of settlement windows anchored on Ethereum: transaction, block, confirmations, and a link
    that re-verifies the window against the chain (same as ``edream verify window KIND WINDOW``)."""
    table = src.tables["chain_anchors"]
    missing = require(src.client, table)
    if missing:
        return missing_note(missing)
    data = rows(
        src.client,
        f"""SELECT kind, window_id, record_count, merkle_root, tx_hash, block_number, confirmations,
                   toUnixTimestamp64Milli(anchored_at) AS anchored_ms
            FROM {table} FINAL ORDER BY anchored_ms DESC, kind, window_id LIMIT {MAX_ANCHORS}""",
    )
    for r in data:
        r["verify"] = {"href": verify_link(r["kind"], r["window_id"]), "text": "verify"}
        r["window_id"] = anchor_href(r["kind"], r["window_id"])  # the window's drill-down page
        r["cli"] = f"edream verify window {r['kind']} {r['window_id']['text']}"
    last = data[0] if data else None
    return {
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {"label": "windows anchored", "value": len(data)},
                    {"label": "last block", "value": last["block_number"] if last else "n/a"},
                    {"label": "records in last", "value": last["record_count"] if last else 0},
                ],
            },
            {"kind": "table", "title": "Anchors", "rows": data},
        ]
    }
