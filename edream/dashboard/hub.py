"""Computes dashboard snapshots at most once per interval, however many browsers are connected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edream.dashboard.rates import RateTracker
from edream.dashboard.registry import Panel, PanelSource, snapshot
from edream.dashboard.tables import table_names

LagFn = Callable[[], dict[str, Any]]


class DashboardHub:
    """Shared, rate-limited snapshot source for the JSON endpoints and every SSE client.

    ``ctx`` is the worker's :class:`streams.app.AgentContext` (ClickHouse thread, counters); ``lag_fn`` is a
    blocking function returning consumer lag (run on its own thread, refreshed every ``lag_every_s``).
    """

    def __init__(
        self,
        ctx: Any,
        panels: list[Panel],
        lag_fn: LagFn | None = None,
        interval_s: float = 2.0,
        lag_every_s: float = 5.0,
        window_ms: int = 2 * 3_600_000,
    ):
        self.ctx = ctx
        self.panels = panels
        self.interval_s = interval_s
        self.lag_every_s = lag_every_s
        self.window_ms = window_ms
        self.tables = table_names()
        self._lag_fn = lag_fn
        self._lag: dict[str, Any] = {}
        self._lag_at = 0.0
        self._lag_pool = ThreadPoolExecutor(1, "dashboard-lag")
        self._rates = RateTracker()
        self._lock = asyncio.Lock()
        self._last: dict[str, Any] | None = None
        self._last_at = 0.0
        self.version = 0

    async def latest(self) -> dict[str, Any]:
        """The newest snapshot, recomputed if older than ``interval_s``."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._last_at >= self.interval_s:
                self._last = await self._compute()
                self._last_at = time.monotonic()
            return self._last

    async def _compute(self) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        counters = dict(self.ctx.counters)
        rates = self._rates.update(counters, now_ms)
        src = PanelSource(
            client=self.ctx.clickhouse,
            now_ms=now_ms,
            counters=counters,
            rates=rates,
            lag=await self._lag_now(),
            tables=self.tables,
            window_ms=self.window_ms,
        )
        snap = await self.ctx.in_clickhouse_thread(snapshot, self.panels, src)
        self.version += 1
        snap["version"] = self.version
        return snap

    async def _lag_now(self) -> dict[str, Any]:
        if self._lag_fn is None:
            return {"error": "lag not available"}
        if time.monotonic() - self._lag_at >= self.lag_every_s:
            try:
                self._lag = await asyncio.get_running_loop().run_in_executor(self._lag_pool, self._lag_fn)
            except Exception as exc:  # noqa: BLE001 - shown in the panel
                self._lag = {"error": f"lag unavailable: {exc}"}
            self._lag_at = time.monotonic()
        return self._lag
