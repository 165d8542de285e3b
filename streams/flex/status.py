"""Order status from the flex topics' records (pure): per prosumer and slot the target, the latest delivery
reported by the verification engine (PROJECTED while the slot runs, FINAL after), and the settlement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streams.flex.requests import to_ms


def order_status(
    order_id: str,
    orders: Iterable[dict[str, Any]],
    deviations: Iterable[dict[str, Any]],
    settlements: Iterable[dict[str, Any]] = (),
) -> dict[str, Any] | None:
    """None if no order ``order_id`` was seen. Records are decoded Avro dicts (FlexOrder, Deviation, Settlement)."""
    revs = [o for o in orders if o["order_id"] == order_id]
    if not revs:
        return None
    latest = max(revs, key=lambda o: o["revision"])
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for a in latest["allocations"]:
        key = (a["prosumer_id"], to_ms(a["slot_start"]))
        rows[key] = {
            "prosumer_id": key[0],
            "slot_start": key[1],
            "target_kw": a["kw"],
            "delivered_kw": None,
            "verdict": None,
            "final": False,
            "amount_micro": None,
        }
    for d in sorted(
        (d for d in deviations if d["order_id"] == order_id),
        key=lambda d: (to_ms(d["ts"]), d["kind"] == "FINAL"),
    ):
        row = rows.get((d["prosumer_id"], to_ms(d["slot_start"])))
        if row is not None and not row["final"]:
            row.update(delivered_kw=d["delivered_kw"], verdict=d["verdict"], final=d["kind"] == "FINAL")
    for s in settlements:
        row = rows.get((s["party_id"], to_ms(s["window_start"])))
        if s["reference_id"] == order_id and row is not None:
            row["amount_micro"] = s["amount_micro"]
    out = sorted(rows.values(), key=lambda r: (r["slot_start"], r["prosumer_id"]))
    return {
        "order_id": order_id,
        "revision": latest["revision"],
        "status": latest["status"],
        "direction": latest["direction"],
        "prosumers": out,
        "deviating": sorted({r["prosumer_id"] for r in out if r["verdict"] not in (None, "WITHIN")}),
        "settled_micro": sum(r["amount_micro"] or 0 for r in out),
    }
