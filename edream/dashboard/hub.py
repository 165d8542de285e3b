"""Computes dashboard snapshots at most once per interval, however many browsers are connected."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from edream.dashboard import console_metrics
from edream.dashboard.alerts import ANCHOR_SLACK_MS, LagTrend, stage_key
from edream.dashboard.probes import chain_status, clickhouse_status
from edream.dashboard.rates import RateTracker
from edream.dashboard.registry import Panel, PanelSource, snapshot, snapshot_without_clickhouse
from edream.dashboard.tables import table_names

LagFn = Callable[[], dict[str, Any]]
StagesFn = Callable[[], list[dict[str, Any]]]
#: Seconds the ClickHouse probe may wait for the ClickHouse thread.
CLICKHOUSE_PROBE_S = 5.0
log = logging.getLogger(__name__)


class DashboardHub:
    """Shared, rate-limited snapshot source for the JSON endpoints and every SSE client.

    ``ctx`` is the worker's :class:`streams.app.AgentContext` (ClickHouse thread, counters); ``lag_fn`` is a
    blocking function returning consumer lag (run on its own thread, refreshed every ``lag_every_s``);
    ``stages_fn`` returns the stage health rows of ``/api/status``; ``eth_rpc_url`` is probed for the chain alert.
    """

    def __init__(
        self,
        ctx: Any,
        panels: list[Panel],
        lag_fn: LagFn | None = None,
        interval_s: float = 2.0,
        lag_every_s: float = 5.0,
        window_ms: int = 2 * 3_600_000,
        stages_fn: StagesFn | None = None,
        eth_rpc_url: str | None = None,
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
        self._stages_fn = stages_fn
        self._eth_rpc_url = eth_rpc_url
        self._trend = LagTrend()
        self._lock = asyncio.Lock()
        self._last: dict[str, Any] | None = None
        self._last_at = 0.0
        self._refresh: asyncio.Task | None = None
        self._probe: asyncio.Future | None = None
        #: time.monotonic() since when the ClickHouse thread has not answered (None: it answers)
        self._silent_since: float | None = None
        self.version = 0

    async def latest(self) -> dict[str, Any]:
        """The newest snapshot, recomputed if older than ``interval_s``."""
        async with self._lock:
            if self._last is None or time.monotonic() - self._last_at >= self.interval_s:
                self._last = await self._compute()
                self._last_at = time.monotonic()
            return self._last

    async def cached(self) -> dict[str, Any]:
        """The newest snapshot at once if there is one (refreshed in the background when older than
        ``interval_s``): a page's first paint never waits for the panels' queries after the first."""
        if self._last is None:
            return await self.latest()
        if time.monotonic() - self._last_at >= self.interval_s and (
            self._refresh is None or self._refresh.done()
        ):
            self._refresh = asyncio.ensure_future(self.latest())
            self._refresh.add_done_callback(_log_failure)
        return self._last

    async def _compute(self) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        counters = dict(self.ctx.counters)
        rates = self._rates.update(counters, now_ms)
        stages = self._stages_fn() if self._stages_fn else []
        for s in stages:
            self._trend.observe(stage_key(s), now_ms, s.get("lag"))
        deps, answering = await self._deps_now()
        src = PanelSource(
            client=self.ctx.clickhouse,
            now_ms=now_ms,
            counters=counters,
            rates=rates,
            lag=await self._lag_now(),
            tables=self.tables,
            window_ms=self.window_ms,
            stages=stages,
            lag_growing=frozenset(k for s in stages if self._trend.growing(k := stage_key(s))),
            deps=deps,
            anchor_allowed_ms=self._anchor_allowed_ms(),
        )
        if answering:
            snap = await self.ctx.in_clickhouse_thread(snapshot, self.panels, src)
        else:  # a query hangs or the thread is backed up: health stays live, the rest shows its last figures
            silent_s = time.monotonic() - (self._silent_since or time.monotonic())
            snap = snapshot_without_clickhouse(self.panels, replace(src, client=None), self._last, silent_s)
        if "health" in snap["panels"]:
            console_metrics.export(snap["panels"]["health"], deps)
        self.version += 1
        snap["version"] = self.version
        return snap

    def _anchor_allowed_ms(self) -> int:
        st = getattr(self.ctx, "settings", None)
        minutes = (st.anchor_window_minutes + st.anchor_grace_minutes) if st is not None else 30.0
        return int(minutes * 60_000) + ANCHOR_SLACK_MS

    async def _deps_now(self) -> tuple[dict[str, dict[str, Any]], bool]:
        """The chain's and ClickHouse's status, and whether the ClickHouse thread answers at all."""
        loop = asyncio.get_running_loop()
        chain = loop.run_in_executor(self._lag_pool, chain_status, self._eth_rpc_url)
        ch, answering = await self._probe_clickhouse()
        return {"chain": await chain, "clickhouse": ch}, answering

    async def _probe_clickhouse(self) -> tuple[dict[str, Any], bool]:
        """``SELECT 1`` on the ClickHouse thread, one probe in flight at a time (a thread that hangs does not
        collect a queue of probes); waits :data:`CLICKHOUSE_PROBE_S` for a first answer, then only briefly while
        the thread stays silent, so the snapshot (and the health panel with it) keeps its pace."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(
                self.ctx.in_clickhouse_thread(clickhouse_status, self.ctx.clickhouse)
            )
        wait_s = CLICKHOUSE_PROBE_S if self._silent_since is None else 0.2
        try:
            ch = await asyncio.wait_for(asyncio.shield(self._probe), wait_s)
        except TimeoutError:
            self._silent_since = self._silent_since or time.monotonic() - wait_s
            silent_s = time.monotonic() - self._silent_since
            return {"up": False, "detail": f"ClickHouse thread has not answered for {silent_s:.0f} s"}, False
        self._silent_since = None
        return ch, True

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


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("dashboard snapshot refresh failed: %s", task.exception())
