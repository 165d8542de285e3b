"""Dead-letter records: an undecodable or invalid message, its original bytes and the reason."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # no runtime import: connectors write dead letters without the ClickHouse client
    from edream.sink_writer import Positioned

#: Default name; agents running under a topology resolve it with ``AgentContext.topic_of("DeadLetter")``.
DEADLETTER_TOPIC = "platform.deadletter.v1"
#: Longest reason kept (characters); the sink writes strings up to its ``max_string_chars``.
MAX_ERROR_CHARS = 2000


def letter_id(
    stage: str, source_topic: str, partition: int, offset: int, original: bytes, error_type: str, error: str
) -> str:
    """Deterministic id of a dead letter (the ``deadletters`` dedup key): the same failure of the same message at
    the same stage gets the same id on every replay; a letter of another stage, another payload at a reused
    offset (new broker) or another reason gets another id."""
    payload = hashlib.sha256(original).hexdigest()
    parts = (stage, source_topic, str(partition), str(offset), payload, error_type, error)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


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
    """DeadLetter record (avro/DeadLetter.avsc), idempotent through ``letter_id`` (see :func:`letter_id`).

    ``error_type`` defaults to the exception's class name (``ValidationError`` for a plain reason); the reason is
    cut to ``MAX_ERROR_CHARS``; ``failed_at`` (UTC epoch ms) defaults to now and is not part of the id.
    """
    if error_type is None:
        error_type = type(error).__name__ if isinstance(error, BaseException) else "ValidationError"
    reason = str(error)
    if len(reason) > MAX_ERROR_CHARS:
        reason = reason[: MAX_ERROR_CHARS - 1] + "…"
    original = original or b""
    return {
        "event_id": f"{source_topic}/{partition}/{offset}",
        "source_topic": source_topic,
        "partition": partition,
        "offset": offset,
        "key": key,
        "original": original,
        "stage": stage,
        "error_type": error_type,
        "error": reason,
        "failed_at": int(time.time() * 1000) if failed_at is None else failed_at,
        "letter_id": letter_id(stage, source_topic, partition, offset, original, error_type, reason),
    }


def sink_letter(
    item: Positioned, stage: str, error: BaseException | str, error_type: str | None, dlq_topic: str
) -> dict[str, Any] | None:
    """Dead letter for a message a sink (``stage``) could not decode or store, with its original key and bytes;
    None for a dead letter this same stage already wrote and cannot store (lettering it again could loop)."""
    if item.topic == dlq_topic and item.record.get("stage") == stage:
        return None
    return dead_letter(item.topic, item.partition, item.offset, item.key, item.raw, stage, error, error_type)
