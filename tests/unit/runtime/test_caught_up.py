"""caught_up: strict by default, a per-partition slack for high-rate inputs, unfetched partitions by their size."""

from __future__ import annotations

from confluent_kafka import TopicPartition

from streams.stateful_loop import caught_up


class FakeConsumer:
    """Assignment, positions and watermarks of a consumer (the real one needs a broker; the rule is the point)."""

    def __init__(self, parts: dict[int, tuple[int, int, int]]):  # partition -> (position, low, high)
        self.parts = parts

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("t", p) for p in self.parts]

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition("t", tp.partition, self.parts[tp.partition][0]) for tp in tps]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        return self.parts[tp.partition][1:]


def test_strict_by_default_and_slack_tolerates_a_few_unread_messages():
    behind = FakeConsumer({0: (100, 0, 100), 1: (95, 0, 100)})
    assert not caught_up(behind)  # type: ignore[arg-type]
    assert caught_up(behind, slack=5)  # type: ignore[arg-type]
    assert not caught_up(behind, slack=4)  # type: ignore[arg-type]


def test_unfetched_partitions_count_their_size_and_no_assignment_is_never_caught_up():
    assert caught_up(FakeConsumer({0: (-1001, 7, 7)}))  # type: ignore[arg-type]
    assert not caught_up(FakeConsumer({0: (-1001, 0, 7)}), slack=6)  # type: ignore[arg-type]
    assert caught_up(FakeConsumer({0: (-1001, 0, 7)}), slack=7)  # type: ignore[arg-type]
    assert not caught_up(FakeConsumer({}))  # type: ignore[arg-type]
