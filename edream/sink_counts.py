"""The sink tables' row counts that ``/api/status`` shows: counted in the background, one count at a time.

Counting is one ``SELECT count() FROM <table> FINAL`` per sink table (34 today) on the worker's one ClickHouse
thread, which the sinks' inserts also use. Every status request queuing its own count would let a few clients that
poll ``/api/status`` (the chaos suite every second, a monitoring script, several ``edream status``) fill that thread
and hold the inserts back, and would make each answer wait for its count: seconds on a busy machine, longer than
``edream status`` waits (3 s). So :class:`SinkCounts` answers at once with the last count and its time
(``counted_at``, UTC epoch ms), and starts a new count when that one is older than ``max_age_s`` and none is in
flight. Only the first request waits for a count (up to ``timeout_s``). While a count has been in flight for longer
than ``timeout_s``, the answer says ClickHouse is not answering, with the last rows counted.
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
            rows = ctx.clickhouse.query(f"SELECT count() FROM {sink.table} FINAL").result_rows
            tables[sink.table] = rows[0][0]
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
    """``await counts.get()``: the last :func:`count_sink_tables` of ``ctx`` (an :class:`~streams.app.AgentContext`:
    its ``in_clickhouse_thread``) with ``counted_at``; at most one count in flight, a new one when the last is
    ``max_age_s`` old."""

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
        self._flight_since = 0.0
        self._last: tuple[float, dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        if self._last is None:  # nothing counted yet: wait for the first count
            try:
                return await asyncio.wait_for(asyncio.shield(self._start()), self.timeout_s)
            except TimeoutError:
                return {
                    "reachable": False,
                    "detail": f"the ClickHouse thread did not answer within {self.timeout_s:.0f} s",
                }
        if self.clock() - self._last[0] >= self.max_age_s:
            self._start()
        out = dict(self._last[1])
        silent_s = self.clock() - self._flight_since
        if self._flight is not None and not self._flight.done() and silent_s > self.timeout_s:
            out["reachable"] = False
            out["detail"] = (
                f"the ClickHouse thread has not answered for {silent_s:.0f} s (rows as counted before)"
            )
        return out

    def _start(self) -> asyncio.Future:
        """The count in flight, or a new one."""
        if self._flight is None or self._flight.done():
            self._flight_since = self.clock()
            self._flight = asyncio.ensure_future(self._count())
        return self._flight

    async def _count(self) -> dict[str, Any]:
        self.counts_started += 1
        out = await self.ctx.in_clickhouse_thread(count_sink_tables, self.ctx)
        out["counted_at"] = int(time.time() * 1000)
        self._last = (self.clock(), out)
        return out
