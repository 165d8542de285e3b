"""The snapshot hub: the first paint gets the newest snapshot at once; stale snapshots refresh in the background."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edream.dashboard.hub import DashboardHub
from edream.dashboard.registry import Panel, PanelSource


class _Ctx:
    """What the hub uses of the worker's AgentContext: counters, a ClickHouse client and its thread."""

    def __init__(self, client: Any):
        self.counters = {"sink.m.rows": 1}
        self.clickhouse = client
        self._pool = ThreadPoolExecutor(1)

    async def in_clickhouse_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)


def test_cached_answers_at_once_and_refreshes_a_stale_snapshot_in_the_background(chdb_client):
    calls: list[float] = []

    def slow(src: PanelSource) -> dict[str, Any]:
        calls.append(time.monotonic())
        time.sleep(0.3)
        return {"blocks": [], "deps": dict(src.deps), "stages": list(src.stages)}

    stages = [{"stage": "intervals", "worker_id": "h:1", "status": "UP", "lag": 3}]
    hub = DashboardHub(
        _Ctx(chdb_client), [Panel("slow", "Slow", 1, slow)], interval_s=0.1, stages_fn=lambda: stages
    )

    async def scenario() -> tuple[dict, dict, float, dict]:
        first = await hub.cached()  # nothing yet: computed
        await asyncio.sleep(0.15)  # now stale
        t0 = time.monotonic()
        again = await hub.cached()  # the old one at once, a refresh starts
        waited = time.monotonic() - t0
        await asyncio.sleep(0.5)
        return first, again, waited, await hub.cached()

    first, again, waited, newer = asyncio.run(scenario())
    assert first["version"] == 1 and again["version"] == 1 and waited < 0.1
    assert newer["version"] == 2 and len(calls) == 2
    panel = first["panels"]["slow"]
    assert panel["stages"] == stages
    assert panel["deps"]["clickhouse"]["up"] is True
    assert panel["deps"]["chain"] == {"up": False, "detail": "no ETH_RPC_URL configured"}
