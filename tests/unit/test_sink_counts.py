"""``/api/status``'s ClickHouse part (:class:`edream.sink_counts.SinkCounts`): a silent ClickHouse thread is
reported instead of waited for, and however many requests come, at most one count is queued on that thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from edream.sink_counts import SinkCounts, count_sink_tables


class _Ctx:
    """The ClickHouse thread of the worker's AgentContext, with two sink tables whose counts are read; every
    query is logged."""

    def __init__(self) -> None:
        self.topology = SimpleNamespace(sinks=[SimpleNamespace(table="a"), SimpleNamespace(table="b")])
        self.queries: list[str] = []
        self.clickhouse = SimpleNamespace(query=self._query)
        self.pool = ThreadPoolExecutor(1)

    def _query(self, sql: str) -> SimpleNamespace:
        self.queries.append(sql)
        if "chain_anchors" in sql:
            raise RuntimeError("no table chain_anchors")
        return SimpleNamespace(result_rows=[[7 if " a " in sql else 3]])

    async def in_clickhouse_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_counts_every_sink_table_deduplicated():
    ctx = _Ctx()
    got = count_sink_tables(ctx)
    assert got == {
        "reachable": True,
        "detail": "2 sink tables",
        "tables": {"a": 7, "b": 3},
        "last_anchor": None,
    }
    assert ctx.queries[:2] == ["SELECT count() FROM a FINAL", "SELECT count() FROM b FINAL"]
    ctx.clickhouse = SimpleNamespace(query=lambda sql: (_ for _ in ()).throw(OSError("chDB gone\nmore")))
    assert count_sink_tables(ctx) == {"reachable": False, "detail": "chDB gone"}


def test_a_silent_clickhouse_thread_is_reported_and_gets_no_second_count():
    ctx = _Ctx()
    release = threading.Event()
    ctx.pool.submit(release.wait, 10)  # a query that hangs
    counts = SinkCounts(ctx, timeout_s=0.2, max_age_s=0.0)

    async def scenario() -> tuple[list[dict], dict]:
        silent = [await counts.get() for _ in range(3)]  # one after the other, each giving up after 0.2 s
        release.set()
        return silent, await counts.get()

    silent, answered = asyncio.run(scenario())
    for got in silent:
        assert got["reachable"] is False and "did not answer within 0 s" in got["detail"]
    assert counts.counts_started == 1  # the requests that gave up left one count queued, not three
    assert answered == count_sink_tables(_Ctx())


def test_concurrent_requests_share_one_count_and_a_fresh_count_is_reused():
    ctx, clock = _Ctx(), _Clock()
    counts = SinkCounts(ctx, max_age_s=2.0, clock=clock)

    async def burst() -> list[dict]:
        return await asyncio.gather(*(counts.get() for _ in range(50)))

    first = asyncio.run(burst())
    assert counts.counts_started == 1 and len(ctx.queries) == 3  # 2 counts + the anchor, for 50 requests
    assert all(got == first[0] for got in first) and first[0]["tables"] == {"a": 7, "b": 3}
    clock.t += 1.9
    asyncio.run(burst())
    assert counts.counts_started == 1  # 1.9 s old: reused
    clock.t += 0.2
    asyncio.run(burst())
    assert counts.counts_started == 2 and len(ctx.queries) == 6  # 2.1 s old: counted again, once
