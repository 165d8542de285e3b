"""Server-sent events wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""

from __future__ import annotations

import json
from typing import Any


def sse_event(
    data: Any, event: str | None = None, event_id: str | None = None, retry_ms: int | None = None
) -> bytes:
    """One SSE message: ``data`` JSON-encoded on a single line (JSON never contains a raw newline)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    lines.append("data: " + json.dumps(data, separators=(",", ":"), default=str))
    return ("\n".join(lines) + "\n\n").encode()


def sse_comment(text: str = "keep-alive") -> bytes:
    """A comment line: keeps proxies from closing an idle stream."""
    return f": {text}\n\n".encode()
