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
    assert answered.pop("counted_at") > 1.7e12 and answered == count_sink_tables(_Ctx())


def test_answers_at_once_with_the_last_count_and_counts_again_in_the_background():
    ctx, clock = _Ctx(), _Clock()
    counts = SinkCounts(ctx, timeout_s=5.0, max_age_s=2.0, clock=clock)

    async def burst() -> list[dict]:
        return await asyncio.gather(*(counts.get() for _ in range(50)))

    async def scenario() -> None:
        first = await burst()  # nothing counted yet: all 50 wait for one count
        assert counts.counts_started == 1 and len(ctx.queries) == 3  # 2 counts + the anchor, for 50 requests
        assert all(got == first[0] for got in first) and first[0]["tables"] == {"a": 7, "b": 3}
        clock.t += 1.9
        assert await burst() == first and counts.counts_started == 1  # 1.9 s old: reused
        clock.t += 0.2
        release = threading.Event()
        ctx.pool.submit(release.wait, 10)  # the thread is busy with a long insert
        again = await burst()  # 2.1 s old: answered at once with it, and one new count queued
        assert again == first and counts.counts_started == 2
        clock.t += 5.1  # that count has waited longer than the timeout: said so, with the rows counted before
        late = await counts.get()
        assert late["reachable"] is False and "has not answered for 5 s" in late["detail"]
        assert late["tables"] == first[0]["tables"] and counts.counts_started == 2
        release.set()
        while counts.counts_started == 2 and (await counts.get())["counted_at"] == first[0]["counted_at"]:
            await asyncio.sleep(0.01)
        fresh = await counts.get()
        assert fresh["reachable"] is True and len(ctx.queries) == 6 and counts.counts_started == 2

    asyncio.run(scenario())
