"""A VEN's opt-in/opt-out of a DR event -> the ``DrEventResponse`` contract (``flex.dr.responses.v1``, pure)."""

from __future__ import annotations

from typing import Any

from connectors.openadr.events import DispatchEvent

#: OpenADR optType -> contract symbol
OPT_TYPES = {"optIn": "OPT_IN", "optOut": "OPT_OUT"}
RESPONSES_TOPIC = "flex.dr.responses.v1"


def dr_event_response(event: DispatchEvent, ven_id: str, opt_type: str, now_ms: int) -> dict[str, Any]:
    """The record of ``ven_id``'s ``opt_type`` (``optIn``/``optOut``) to ``event`` at ``now_ms`` (UTC epoch ms).
    ``event_id`` is deterministic per DR event, VEN and opt: a repeated response is the same record."""
    opt = OPT_TYPES.get(opt_type)
    if opt is None:
        raise ValueError(f"optType {opt_type!r} is neither optIn nor optOut")
    return {
        "event_id": f"openadr/{ven_id}/{event.event_id}/{opt}",
        "dr_event_id": event.event_id,
        "order_id": event.order_id,
        "revision": event.revision,
        "prosumer_id": event.prosumer_id,
        "channel": "OPENADR",
        "party_id": ven_id,
        "opt": opt,
        "responded_at": now_ms,
    }
