"""``/api/status``'s ClickHouse part: a ClickHouse thread that does not answer is reported unreachable instead of
hanging the status API."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from edream.runner import _clickhouse_status, _clickhouse_status_within


class _Ctx:
    """The ClickHouse thread of the worker's AgentContext, with a sink table whose count is read."""

    def __init__(self) -> None:
        self.topology = SimpleNamespace(sinks=[SimpleNamespace(table="t")])
        self.clickhouse = SimpleNamespace(query=lambda sql: SimpleNamespace(result_rows=[[7]]))
        self.pool = ThreadPoolExecutor(1)

    async def in_clickhouse_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


def test_a_silent_clickhouse_thread_is_reported_not_waited_for():
    ctx = _Ctx()
    release = threading.Event()
    ctx.pool.submit(release.wait, 10)  # a query that hangs
    try:
        got = asyncio.run(_clickhouse_status_within(ctx, 0.2))
    finally:
        release.set()
    assert got["reachable"] is False and "did not answer within" in got["detail"]
    assert asyncio.run(_clickhouse_status_within(ctx, 5)) == _clickhouse_status(ctx)  # answers once free
