"""The stage consumer's buffer: re-keyed source partitions apart from the time-aligned state inputs."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TopicPartition
from quixstreams.internal_consumer.buffering import InternalConsumerBuffer

from edream.runtime.rekey_buffer import SourcesApartBuffer

RAW, REP, CLOCK = "raw", "repartition", "clock"


@dataclass
class Msg:
    """The parts of a confluent-kafka message the buffer reads."""

    _topic: str
    _partition: int
    _offset: int
    _ts: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)


def assigned(buffer: InternalConsumerBuffer, partitions: int = 1) -> InternalConsumerBuffer:
    buffer.assign_partitions([TopicPartition(t, p) for t in (RAW, REP, CLOCK) for p in range(partitions)])
    return buffer


def drain(buffer: InternalConsumerBuffer) -> list[tuple[str, int]]:
    out = []
    while (m := buffer.pop()) is not None:
        out.append((m.topic(), m.offset()))
    return out


def test_quix_buffer_holds_a_source_partition_back_while_its_repartition_partition_is_not_known_idle():
    """The defect: the source waits for its own re-keyed output to come back from the broker."""
    buffer = assigned(InternalConsumerBuffer())
    buffer.feed([Msg(RAW, 0, 0, 10), Msg(RAW, 0, 1, 11)], high_watermarks={(REP, 0): 5, (CLOCK, 0): 0})
    assert buffer.pop() is None


def aligned(popped: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [m for m in popped if m[0] != RAW]


def test_source_partitions_are_consumed_apart_while_state_inputs_stay_aligned():
    buffer = assigned(SourcesApartBuffer(frozenset({RAW})))
    buffer.feed(
        [Msg(RAW, 0, 0, 10), Msg(RAW, 0, 1, 11), Msg(REP, 0, 0, 9), Msg(CLOCK, 0, 0, 5)],
        high_watermarks={(RAW, 0): 2, (REP, 0): 5, (CLOCK, 0): 1},
    )
    # the clock (ts 5) before the repartition record (ts 9); then the clock partition is empty and not known idle
    # until the next fetch: the aligned group waits (as in Quix), the source goes on
    popped = drain(buffer)
    assert aligned(popped) == [(CLOCK, 0)] and sorted(set(popped) - {(CLOCK, 0)}) == [(RAW, 0), (RAW, 1)]
    buffer.feed([Msg(RAW, 0, 2, 12), Msg(CLOCK, 0, 1, 20)], high_watermarks={(REP, 0): 5, (CLOCK, 0): 2})
    popped = drain(buffer)
    # the tick (ts 20) waits for the repartition records still on the broker (offsets 1-4)
    assert aligned(popped) == [(REP, 0)] and (RAW, 2) in popped
    buffer.feed([Msg(REP, 0, o, 12 + o) for o in range(1, 5)], high_watermarks={(REP, 0): 5, (CLOCK, 0): 2})
    assert drain(buffer) == [(REP, 1), (REP, 2), (REP, 3), (REP, 4)]
    buffer.feed([], high_watermarks={(REP, 0): 5, (CLOCK, 0): 2})  # the next fetch: the repartition is idle
    assert drain(buffer) == [(CLOCK, 1)]


def test_a_full_source_partition_is_paused_and_resumed_when_it_drained():
    buffer = assigned(SourcesApartBuffer(frozenset({RAW}), max_partition_buffer_size=3), partitions=2)
    buffer.feed([Msg(RAW, 1, o, o) for o in range(3)], high_watermarks={(RAW, 1): 10})
    assert buffer.pause_full() == [(RAW, 1)]
    assert buffer.resume_empty() == []
    assert len(drain(buffer)) == 3
    assert buffer.resume_empty() == [(RAW, 1)]


def test_groups_are_served_round_robin():
    buffer = assigned(SourcesApartBuffer(frozenset({RAW})), partitions=2)
    buffer.feed(
        [Msg(RAW, 0, o, o) for o in range(3)] + [Msg(RAW, 1, o, o) for o in range(3)],
        high_watermarks={(REP, 0): 0, (REP, 1): 0, (CLOCK, 0): 0, (CLOCK, 1): 0},
    )
    assert [buffer.pop().partition() for _ in range(4)] == [0, 1, 0, 1]


def test_revoked_and_cleared_partitions_leave_the_others():
    buffer = assigned(SourcesApartBuffer(frozenset({RAW})))
    buffer.feed([Msg(RAW, 0, 0, 1), Msg(CLOCK, 0, 0, 2)], high_watermarks={(REP, 0): 0, (CLOCK, 0): 1})
    buffer.clear(RAW, 0)
    buffer.revoke_partitions([TopicPartition(REP, 0)])
    assert drain(buffer) == [(CLOCK, 0)]
