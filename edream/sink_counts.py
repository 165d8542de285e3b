"""The sink tables' row counts that ``/api/status`` shows: one count at a time, shared by every caller.

Counting is one ``SELECT count() FROM <table> FINAL`` per sink table (34 today) on the worker's one ClickHouse
thread, which the sinks' inserts also use. Every status request queuing its own count would let a few clients that
poll ``/api/status`` (the chaos suite every second, a monitoring script, several ``edream status``) fill that thread
and hold the inserts back; a request that gave up waiting would still leave its count queued. So
:class:`SinkCounts` keeps at most one count in flight, hands its answer to every request that came meanwhile and
reuses it for ``max_age_s``; a count that takes longer than ``timeout_s`` is reported as such (ClickHouse
unreachable), and the next request waits for the same count instead of adding one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edream.logs import first_line

#: seconds a request waits for the count before it reports the ClickHouse thread silent
TIMEOUT_S = 10.0
#: seconds a finished count is reused (the status of a platform that stores thousands of rows a second)
MAX_AGE_S = 2.0


def count_sink_tables(ctx: Any) -> dict[str, Any]:
    """Rows per sink table (deduplicated: ``FINAL``) and the newest anchor receipt; blocking, for the ClickHouse
    thread. ``reachable`` False with the first line of the error when a query fails."""
    try:
        tables = {}
        for sink in ctx.topology.sinks:
            tables[sink.table] = ctx.clickhouse.query(f"SELECT count() FROM {sink.table} FINAL").result_rows[
                0
            ][0]
        out = {"reachable": True, "detail": f"{len(tables)} sink tables", "tables": tables}
        out["last_anchor"] = _last_anchor(ctx)
        return out
    except Exception as exc:  # noqa: BLE001 - status, not control flow
        return {"reachable": False, "detail": first_line(exc)}


def _last_anchor(ctx: Any) -> dict | None:
    """Most recent anchor receipt, if the anchoring agent has written any."""
    try:
        rows = ctx.clickhouse.query(
            "SELECT kind, window_id, record_count, block_number, tx_hash FROM chain_anchors FINAL "
            "ORDER BY anchored_at DESC LIMIT 1"
        ).named_results()
        return next(iter(rows), None)
    except Exception:  # noqa: BLE001 - no anchors table yet
        return None


class SinkCounts:
    """``await counts.get()``: :func:`count_sink_tables` of ``ctx`` (an :class:`~streams.app.AgentContext`: its
    ``in_clickhouse_thread``), at most one in flight and reused for ``max_age_s``."""

    def __init__(
        self,
        ctx: Any,
        timeout_s: float = TIMEOUT_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.ctx, self.timeout_s, self.max_age_s, self.clock = ctx, timeout_s, max_age_s, clock
        self.counts_started = 0
        self._flight: asyncio.Future | None = None
        self._last: tuple[float, dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        if self._last is not None and self.clock() - self._last[0] < self.max_age_s:
            return self._last[1]
        if self._flight is None or self._flight.done():
            self._flight = asyncio.ensure_future(self._count())
        try:
            return await asyncio.wait_for(asyncio.shield(self._flight), self.timeout_s)
        except TimeoutError:
            return {
                "reachable": False,
                "detail": f"the ClickHouse thread did not answer within {self.timeout_s:.0f} s",
            }

    async def _count(self) -> dict[str, Any]:
        self.counts_started += 1
        out = await self.ctx.in_clickhouse_thread(count_sink_tables, self.ctx)
        self._last = (self.clock(), out)
        return out
