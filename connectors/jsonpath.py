"""Dotted JSON paths (``recharges.0.kwTot``) and device timestamp parsing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from connectors.values import parse_number

MISSING = object()


def get_path(doc: Any, path: str) -> Any:
    """Value at a dotted path; list indices are integers; ``MISSING`` when any step is absent."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return MISSING
        else:
            return MISSING
    return cur


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def parse_timestamp(raw: Any, fmt: str = "epoch_ms", timezone: str = "UTC") -> int | None:
    """Device time -> UTC epoch ms; ``None`` when unparsable.

    ``fmt``: ``epoch_ms``, ``epoch_s``, ``iso`` (ISO 8601) or a ``strptime`` pattern. Naive local times (e.g.
    SpotLink's ``"2019-06-24 08:17:08"``) are interpreted in ``timezone``; DST gaps/folds resolve as
    ``zoneinfo`` does (fold=0).
    """
    if fmt in ("epoch_ms", "epoch_s"):
        n = parse_number(raw)
        if n is None:
            return None
        return int(n) if fmt == "epoch_ms" else int(n * 1000)
    if not isinstance(raw, str):
        return None
    try:
        dt = datetime.fromisoformat(raw.strip()) if fmt == "iso" else datetime.strptime(raw.strip(), fmt)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(timezone))
    return int(dt.astimezone(UTC).timestamp() * 1000)
