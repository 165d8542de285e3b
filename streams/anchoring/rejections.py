"""Rejection records of settlements the anchorer cannot anchor (avro/Rejection.avsc, ``platform.rejections.v1``).

Codes: ``LATE_FOR_ANCHOR`` (the settlement's window was already anchored without it), ``ANCHOR_CONFLICT`` (the
chain holds another root for the window), ``ANCHOR_REFUSED`` (the contract refused the window's anchor).
"""

from __future__ import annotations

from typing import Any

LATE_FOR_ANCHOR = "LATE_FOR_ANCHOR"
ANCHOR_CONFLICT = "ANCHOR_CONFLICT"
ANCHOR_REFUSED = "ANCHOR_REFUSED"


def rejection(record: dict[str, Any], code: str, reason: str) -> dict[str, Any]:
    """Rejection record for a settlement the anchorer cannot anchor; deterministic id and event time (UTC epoch
    ms: the settlement's ``computed_at``, else its ``window_end``)."""
    return {
        "event_id": f"anchor-reject/{code}/{record['settlement_id']}/{record.get('version', 1)}",
        "subject_kind": "Settlement",
        "subject_id": record["settlement_id"],
        "party_id": record.get("party_id"),
        "code": code,
        "reason": reason,
        "rejected_at": int(record.get("computed_at") or record["window_end"]),
    }
