"""The audit trail of the UFTP gateway: every message received from a DSO (once its seal is verified) and every
message sent to one becomes a ``UftpMessage`` event on ``uftp.messages.v1`` (and a row of ClickHouse
``uftp_messages``), with its XML, so what was said can be shown in a dispute. Pure functions."""

from __future__ import annotations

from typing import Any

from shapeshifter_uftp import transport

from connectors.uftp.isp import iso_ms
from streams.outputs import Out

TOPIC_MESSAGES = "uftp.messages.v1"


def _time_stamp(message: Any) -> int | None:
    try:
        return iso_ms(str(message.time_stamp)) if getattr(message, "time_stamp", None) else None
    except ValueError:
        return None


def message_event(
    message: Any,
    direction: str,
    recorded_at: int,
    dso_id: str | None = None,
    delivered: bool | None = None,
) -> Out:
    """The ``UftpMessage`` event of a UFTP ``message`` (a shapeshifter-uftp payload message); ``direction`` IN
    (from a DSO) or OUT (to one); ``recorded_at`` UTC epoch ms."""
    message_id = str(message.message_id)
    record = {
        "event_id": f"{direction}:{message_id}",
        "message_id": message_id,
        "conversation_id": getattr(message, "conversation_id", None),
        "message_type": type(message).__name__,
        "direction": direction,
        "sender_domain": str(message.sender_domain or ""),
        "recipient_domain": str(message.recipient_domain or ""),
        "dso_id": dso_id,
        "time_stamp": _time_stamp(message),
        "recorded_at": recorded_at,
        "delivered": delivered,
        "xml": transport.to_xml(message),
    }
    return Out(TOPIC_MESSAGES, "UftpMessage", message_id, record)
