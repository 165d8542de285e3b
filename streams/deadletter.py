"""Dead-letter records: an undecodable or invalid message, its original bytes and the reason."""

from __future__ import annotations

import time
from typing import Any

#: Default name; agents running under a topology resolve it with ``AgentContext.topic_of("DeadLetter")``.
DEADLETTER_TOPIC = "platform.deadletter.v1"


def dead_letter(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    original: bytes | None,
    stage: str,
    error: BaseException | str,
    error_type: str | None = None,
    failed_at: int | None = None,
) -> dict[str, Any]:
    """DeadLetter record (avro/DeadLetter.avsc); ``event_id`` is the message position, so it is idempotent.

    ``error_type`` defaults to the exception's class name (``ValidationError`` for a plain reason);
    ``failed_at`` (UTC epoch ms) defaults to now.
    """
    if error_type is None:
        error_type = type(error).__name__ if isinstance(error, BaseException) else "ValidationError"
    return {
        "event_id": f"{source_topic}/{partition}/{offset}",
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "original": original or b"",
        "stage": stage,
        "error_type": error_type,
        "error": str(error),
        "failed_at": int(time.time() * 1000) if failed_at is None else failed_at,
    }
