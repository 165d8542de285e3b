"""Server-sent events wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


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


class ShutdownSignal:
    """Set when the web server begins to shut down (``web_app.on_shutdown``). A stream (SSE) handler waits on it
    between pushes and races its next snapshot against it, so every open dashboard ends at once: aiohttp otherwise
    waits up to 60 s for each open stream before it lets ``edream run`` stop (measured: Ctrl-C took 131 s with one
    dashboard open)."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None  # made on the server's event loop, at first use

    def _ev(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    async def set(self, _app: Any = None) -> None:
        self._ev().set()

    def is_set(self) -> bool:
        return self._event is not None and self._event.is_set()

    async def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True if the server is shutting down."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ev().wait(), timeout_s)
        return self.is_set()

    async def until(self, aw: Awaitable[T]) -> T | None:
        """The result of ``aw``, or None (``aw`` cancelled) if the server begins to shut down first."""
        work, stop = asyncio.ensure_future(aw), asyncio.ensure_future(self._ev().wait())
        try:
            await asyncio.wait({work, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if work.done():
            return work.result()
        work.cancel()
        return None
