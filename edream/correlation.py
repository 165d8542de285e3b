"""Correlation ids in structured logs: every log line written while handling one event carries its id.

    with correlated(event["event_id"], topic=msg.topic):
        log.info("settled", window=w)   # -> {"correlation_id": "...", "topic": "...", "event": "settled", ...}

The id follows the event through the pipeline: producers put it into the Kafka header ``correlation_id``
(:func:`headers_with`), consumers take it from there or fall back to the event id (:func:`from_headers`).
Uses structlog context variables, so it is per asyncio task / thread (see :mod:`edream.logs`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import structlog

HEADER = "correlation_id"


def new_id() -> str:
    return uuid.uuid4().hex


@contextmanager
def correlated(correlation_id: str | None = None, **fields: Any) -> Iterator[str]:
    """Bind ``correlation_id`` (a new one if None) and ``fields`` to every log line inside the block."""
    cid = correlation_id or new_id()
    tokens = structlog.contextvars.bind_contextvars(correlation_id=cid, **fields)
    try:
        yield cid
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def from_headers(headers: Sequence[tuple[str, bytes | None]] | None, fallback: str | None = None) -> str:
    """The correlation id of a consumed Kafka message (header), else ``fallback`` (e.g. its event id), else new."""
    for k, v in headers or ():
        if k == HEADER and v:
            return v.decode()
    return fallback or new_id()


def headers_with(correlation_id: str, headers: Sequence[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
    """Producer headers carrying ``correlation_id`` (replacing an existing one)."""
    return [(k, v) for k, v in headers if k != HEADER] + [(HEADER, correlation_id.encode())]
