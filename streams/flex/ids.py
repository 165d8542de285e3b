"""Deterministic identifiers: replays of the same inputs produce the same ids (idempotent sinks)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

MS_PER_MINUTE = 60_000


def stable_id(prefix: str, *parts: object, length: int = 24) -> str:
    """``<prefix>-<hex>`` where hex is the first ``length`` chars of SHA-256 over the ``|``-joined parts."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:length]}"


def window_id(slot_start_ms: int, slot_minutes: int) -> str:
    """Settlement window label, e.g. ``2026-11-23T10:15Z/15m`` (UTC)."""
    start = datetime.fromtimestamp(slot_start_ms / 1000, tz=UTC)
    return f"{start:%Y-%m-%dT%H:%M}Z/{slot_minutes}m"
