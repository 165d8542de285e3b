"""One flexibility order: slots, per-prosumer target vs delivered, deviations, re-dispatch revisions, settlements
(incentives and penalties) and the anchors that cover them, with their verification against the chain."""

from __future__ import annotations

from typing import Any

from edream.dashboard.pages import NotFound, money, page, page_href
from edream.dashboard.panels.anchoring import anchor_href, verify_link
from edream.dashboard.query import require, rows
from edream.dashboard.registry import PanelSource

MAX_EVENTS = 200


def revisions(src: PanelSource, order_id: str) -> list[dict[str, Any]]:
    """Every revision of the order (re-dispatch = a new revision), oldest first; kW summed over allocations."""
    data = rows(
        src.client,
        f"""SELECT revision, status, direction, request_id, toUnixTimestamp64Milli(created_at) AS created_ms,
                   length(JSONExtractArrayRaw(allocations)) AS n_allocations,
                   arrayStringConcat(arraySort(arrayDistinct(arrayMap(a -> JSONExtractString(a, 'prosumer_id'),
                       JSONExtractArrayRaw(allocations)))), ' ') AS prosumers,
                   round(arraySum(arrayMap(a -> JSONExtractFloat(a, 'kw'), JSONExtractArrayRaw(allocations))), 3)
                       AS kw_over_slots
            FROM {src.tables["flex_orders"]} FINAL WHERE order_id = {{id:String}} ORDER BY revision""",
        {"id": order_id},
    )
    for r in data:
        r["status"], r["direction"] = str(r["status"]), str(r["direction"])
    return data


def prosumer_slots(src: PanelSource, order_id: str) -> list[dict[str, Any]]:
    """Latest evaluation (FINAL preferred) per prosumer and slot: target vs delivered kW and the verdict."""
    if require(src.client, src.tables["flex_deviations"]):
        return []
    data = rows(
        src.client,
        f"""SELECT prosumer_id, toUnixTimestamp64Milli(slot_start) AS slot_ms,
                   argMax(kind, (kind = 'FINAL', ts)) AS evaluation,
                   round(argMax(target_kw, (kind = 'FINAL', ts)), 3) AS target_kw,
                   round(argMax(delivered_kw, (kind = 'FINAL', ts)), 3) AS delivered_kw,
                   argMax(verdict, (kind = 'FINAL', ts)) AS verdict
            FROM {src.tables["flex_deviations"]} FINAL WHERE order_id = {{id:String}}
            GROUP BY prosumer_id, slot_ms ORDER BY slot_ms, prosumer_id""",
        {"id": order_id},
    )
    for r in data:
        r["evaluation"], r["verdict"] = str(r["evaluation"]), str(r["verdict"])
        r["short_kw"] = (
            round(max(0.0, r["target_kw"] - r["delivered_kw"]), 3) if r["verdict"] == "SHORTFALL" else 0.0
        )
    return data


def deviation_events(src: PanelSource, order_id: str) -> list[dict[str, Any]]:
    """Every deviation event of the order, newest first (PROJECTED early warnings and FINAL verdicts)."""
    if require(src.client, src.tables["flex_deviations"]):
        return []
    data = rows(
        src.client,
        f"""SELECT toUnixTimestamp64Milli(ts) AS at_ms, kind, prosumer_id, toUnixTimestamp64Milli(slot_start) AS slot_ms,
                   round(target_kw, 3) AS target_kw, round(delivered_kw, 3) AS delivered_kw, tolerance, verdict
            FROM {src.tables["flex_deviations"]} FINAL WHERE order_id = {{id:String}}
            ORDER BY at_ms DESC, prosumer_id LIMIT {MAX_EVENTS}""",
        {"id": order_id},
    )
    for r in data:
        r["kind"], r["verdict"] = str(r["kind"]), str(r["verdict"])
    return data


def settlements(src: PanelSource, order_id: str) -> list[dict[str, Any]]:
    """The order's settlements per prosumer and slot: energy (Wh), amount (currency units; negative = penalty)."""
    if require(src.client, src.tables["settlement_flex"]):
        return []
    data = rows(
        src.client,
        f"""SELECT party_id AS prosumer_id, window_id, toUnixTimestamp64Milli(window_start) AS window_start_ms,
                   toUnixTimestamp64Milli(window_end) AS window_end_ms,
                   JSONExtractString(details, 'verdict') AS verdict, quantity_wh,
                   amount_micro / 1e6 AS amount, currency, settlement_id
            FROM {src.tables["settlement_flex"]} FINAL WHERE reference_id = {{id:String}} AND kind = 'FLEX'
            ORDER BY window_start_ms, prosumer_id""",
        {"id": order_id},
    )
    for r in data:
        r["kind"] = "PENALTY" if r["amount"] < 0 else "INCENTIVE"
    return data


def covering_anchors(src: PanelSource, settled: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """FLEX anchors whose window covers one of ``settled``'s settlement windows, with a verification link."""
    if not settled or require(src.client, src.tables["chain_anchors"]):
        return []
    start = min(r["window_start_ms"] for r in settled)
    end = max(r["window_end_ms"] for r in settled)
    data = rows(
        src.client,
        f"""SELECT kind, window_id, toUnixTimestamp64Milli(window_start) AS window_start_ms,
                   toUnixTimestamp64Milli(window_end) AS window_end_ms, record_count, block_number, confirmations,
                   tx_hash
            FROM {src.tables["chain_anchors"]} FINAL
            WHERE kind = 'FLEX' AND toUnixTimestamp64Milli(window_end) > {{start:Int64}}
              AND toUnixTimestamp64Milli(window_start) < {{end:Int64}}
            ORDER BY window_start_ms""",
        {"start": start, "end": end},
    )
    for r in data:
        r["verify"] = {"href": verify_link(r["kind"], r["window_id"]), "text": "verify"}
    return data


def linked(per_slot: list[dict[str, Any]], anchors: list[dict[str, Any]]) -> None:
    """Link the tables' prosumers and anchor windows to their drill-down pages (in place, after computing)."""
    for r in per_slot:
        r["prosumer_id"] = page_href("prosumer", r["prosumer_id"])
    for a in anchors:
        a["window_id"] = anchor_href(a["kind"], a["window_id"])


@page("order")
def order_page(src: PanelSource, order_id: str) -> dict[str, Any]:
    revs = revisions(src, order_id) if not require(src.client, src.tables["flex_orders"]) else []
    if not revs:
        raise NotFound(f"no flexibility order {order_id}")
    per_slot = prosumer_slots(src, order_id)
    settled = settlements(src, order_id)
    anchors = covering_anchors(src, settled)
    last = revs[-1]
    slots = sorted({r["slot_ms"] for r in per_slot})
    penalty = -sum(r["amount"] for r in settled if r["amount"] < 0)
    currency = settled[0]["currency"] if settled else ""
    short = [r for r in per_slot if r["verdict"] == "SHORTFALL"]
    verify_blocks = [
        {"kind": "verify", "title": f"Verify {a['window_id']}", "url": a["verify"]["href"]} for a in anchors
    ]
    linked(per_slot, anchors)
    return {
        "title": f"Order {order_id}",
        "subtitle": f"request {last['request_id']}, {last['direction']}; all times UTC",
        "blocks": [
            {
                "kind": "stats",
                "stats": [
                    {"label": "status", "value": last["status"]},
                    {"label": "revisions", "value": len(revs)},
                    {"label": "slots evaluated", "value": len(slots)},
                    {"label": "shortfalls (prosumer-slots)", "value": len(short)},
                    {"label": "penalties", "value": money(penalty), "unit": currency},
                    {
                        "label": "incentives",
                        "value": money(sum(r["amount"] for r in settled if r["amount"] > 0)),
                        "unit": currency,
                    },
                ],
            },
            {
                "kind": "series",
                "title": "Target vs delivered per slot (sum over prosumers)",
                "unit": "kW",
                "step": True,
                "wide": True,
                "series": [
                    {
                        "name": name,
                        "points": [
                            [t, round(sum(r[col] for r in per_slot if r["slot_ms"] == t), 3)] for t in slots
                        ],
                    }
                    for name, col in (("target", "target_kw"), ("delivered", "delivered_kw"))
                ],
            },
            {"kind": "table", "title": "Per prosumer and slot (kW)", "rows": per_slot},
            {"kind": "table", "title": "Revisions (re-dispatch)", "rows": revs},
            {
                "kind": "table",
                "title": "Settlements (amount in currency units, negative = penalty)",
                "rows": settled,
            },
            {
                "kind": "table",
                "title": "Anchors",
                "rows": anchors,
                "note": None if anchors else "no anchor covers these settlements yet",
            },
            *verify_blocks,
            {
                "kind": "table",
                "title": "Deviation events (newest first)",
                "rows": deviation_events(src, order_id),
            },
        ],
    }
