"""The snapshot hub: the first paint gets the newest snapshot at once; stale snapshots refresh in the background;
while the ClickHouse thread hangs, the health panel stays live and the others show their last figures."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edream.dashboard.hub import CLICKHOUSE_PROBE_S, DashboardHub
from edream.dashboard.panels.health import health
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


def test_health_stays_live_while_the_clickhouse_thread_hangs_and_the_rest_shows_its_last_figures(chdb_client):
    ctx = _Ctx(chdb_client)
    stages = [{"stage": "intervals", "worker_id": "h:1", "status": "UP", "lag": 0}]
    load = Panel("load", "Load", 10, lambda src: {"blocks": [{"kind": "stats", "stats": [{"value": 42}]}]})
    live = Panel("health", "Health", 5, health, live_without_clickhouse=True)
    hub = DashboardHub(ctx, [live, load], interval_s=0.0, stages_fn=lambda: stages)
    release = threading.Event()

    async def scenario() -> tuple[dict, dict, dict, float, dict]:
        before = await hub.latest()
        ctx._pool.submit(release.wait, 30)  # a query that hangs on the ClickHouse thread
        stages[0] = {**stages[0], "status": "DOWN", "last_error": "process 7 killed by SIGKILL"}
        t0 = time.monotonic()
        hung = await hub.latest()  # waits for the probe once
        again = await hub.latest()  # then at once while the thread stays silent
        quick = time.monotonic() - t0
        release.set()
        await asyncio.sleep(0.2)
        return before, hung, again, quick, await hub.latest()

    before, hung, again, quick, after = asyncio.run(scenario())
    assert before["panels"]["load"]["blocks"][0]["stats"][0]["value"] == 42
    for snap in (hung, again):
        rows = next(b for b in snap["panels"]["health"]["blocks"] if b.get("title") == "Stages")["rows"]
        assert rows[0]["status"] == "DOWN"  # the stage's news is shown although ClickHouse hangs
        alerts = snap["panels"]["health"]["metrics"]["alerts"]
        assert "EdreamStageDown" in alerts and "EdreamDependencyDown" in alerts
        assert snap["panels"]["load"]["blocks"] == before["panels"]["load"]["blocks"]
        assert "ClickHouse has not answered for" in snap["panels"]["load"]["error"]
    assert quick < CLICKHOUSE_PROBE_S + 2  # one probe waited for, not one per snapshot
    assert "error" not in after["panels"]["load"] and after["version"] > again["version"]
