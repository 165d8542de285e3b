"""The stage consumer's batch consume: what is queued at once, a wait only when nothing is."""

from __future__ import annotations

from edream.runtime.consume_ready import consume_ready_first


class Queue:
    """A consume(num_messages, timeout) over queued records that logs the timeouts it was called with."""

    def __init__(self, queued: list[int]):
        self.queued, self.calls = queued, []

    def consume(self, num_messages: int = 1, timeout: float | None = None) -> list[int]:
        self.calls.append(timeout)
        out, self.queued = self.queued[:num_messages], self.queued[num_messages:]
        return out


def test_queued_records_come_back_without_waiting():
    q = Queue([1, 2, 3])
    assert consume_ready_first(q.consume)(num_messages=10_000, timeout=0.05) == [1, 2, 3]
    assert q.calls == [0]


def test_it_waits_only_when_nothing_is_queued():
    q = Queue([])
    assert consume_ready_first(q.consume)(num_messages=10, timeout=0.05) == []
    assert q.calls == [0, 0.05]
    q.calls.clear()
    assert consume_ready_first(q.consume)(num_messages=10, timeout=0) == []
    assert q.calls == [0]
