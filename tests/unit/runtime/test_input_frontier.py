"""InputFrontier: ticks wait until re-keyed sources are committed by the group and own partitions are processed."""

from __future__ import annotations

from types import SimpleNamespace

from confluent_kafka import TopicPartition

from edream.runtime.input_frontier import InputFrontier

SOURCE, REPART, CLOCK = "settlements", "repartition__g--anchoring-settlements", "edream.clock.g"


class FakeConsumer:
    """What the frontier asks a consumer: assignment, group-committed offsets, watermarks (broker and cached)."""

    def __init__(self):
        self.assigned = [TopicPartition(SOURCE, 0), TopicPartition(REPART, 0), TopicPartition(CLOCK, 0)]
        self.committed_at = {(SOURCE, 0): -1001, (SOURCE, 1): -1001, (REPART, 0): -1001}
        self.listed = {(SOURCE, 0): (0, 5), (SOURCE, 1): (0, 3), (REPART, 0): (0, 8), (CLOCK, 0): (0, 99)}
        self.fetched: dict[tuple[str, int], int] = {}
        self.calls = 0
        self.listed_calls = 0  # ListOffsets round trips

    def assignment(self):
        return list(self.assigned)

    def committed(self, tps, timeout):
        self.calls += 1
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_at[(tp.topic, tp.partition)]) for tp in tps
        ]

    def get_watermark_offsets(self, tp, timeout=None, cached=False):
        assert cached, "the broker's offsets are asked for all partitions at once (offsets_for_times)"
        return (-1001, self.fetched.get((tp.topic, tp.partition), -1001))

    def offsets_for_times(self, tps, timeout=None):
        """One ListOffsets request: -1 asks a partition's end, -2 its start."""
        self.listed_calls += 1
        return [
            TopicPartition(tp.topic, tp.partition, self.listed[(tp.topic, tp.partition)][tp.offset == -1])
            for tp in tps
        ]

    def list_topics(self, topic, timeout):
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None, 1: None})})


def _frontier(consumer: FakeConsumer, clock: list[float]) -> InputFrontier:
    return InputFrontier(
        lambda: consumer,
        frozenset({SOURCE}),
        lambda t: t.startswith("edream.clock"),
        ttl_s=1.0,
        monotonic=lambda: clock[0],
    )


def test_waits_for_every_source_partition_of_the_group_then_for_own_partitions():
    c, clock = FakeConsumer(), [0.0]
    f = _frontier(c, clock)
    assert not f.caught_up()  # nothing committed on the sources
    c.committed_at[(SOURCE, 0)] = 5
    clock[0] += 2
    assert not f.caught_up()  # partition 1 (another worker's) is not committed yet
    c.committed_at[(SOURCE, 1)] = 3
    clock[0] += 2
    assert not f.caught_up()  # all re-keyed, but the repartition topic is not processed here
    for offset in range(7):
        f.processed(REPART, 0, offset)
    clock[0] += 2
    assert not f.caught_up()  # offset 7 is still waiting
    f.processed(REPART, 0, 7)
    clock[0] += 2
    assert f.caught_up()  # the clock topic's 99 ticks are not input


def test_cached_high_watermark_of_a_fetched_partition_counts():
    """Tansu's ListOffsets reports the last batch's base offset + 1; the fetched high watermark is the true end."""
    c, clock = FakeConsumer(), [0.0]
    c.committed_at.update({(SOURCE, 0): 5, (SOURCE, 1): 3, (REPART, 0): 8})
    c.fetched[(SOURCE, 0)] = 9  # four more records in the last batch
    f = _frontier(c, clock)
    assert not f.caught_up()
    c.committed_at[(SOURCE, 0)] = 9
    clock[0] += 2
    assert f.caught_up()  # own partitions: the group's committed offset counts after a restart


def test_answer_is_cached_and_a_broker_error_means_not_caught_up():
    c, clock = FakeConsumer(), [0.0]
    c.committed_at.update({(SOURCE, 0): 5, (SOURCE, 1): 3, (REPART, 0): 8})
    f = _frontier(c, clock)
    assert f.caught_up()
    calls = c.calls
    assert f.caught_up() and c.calls == calls  # within the TTL: no broker round trip
    c.committed = lambda tps, timeout: (_ for _ in ()).throw(RuntimeError("broker away"))
    clock[0] += 2
    assert not f.caught_up()


def test_a_stage_behind_on_its_own_fetched_partitions_is_known_behind_without_asking_the_broker():
    """The hot stages (intervals) ask every second: under load they lag, and the fetch responses say so."""
    c, clock = FakeConsumer(), [0.0]
    f = InputFrontier(
        lambda: c, frozenset(), lambda t: t.startswith("edream.clock"), monotonic=lambda: clock[0]
    )
    c.fetched[(SOURCE, 0)] = 5
    c.fetched[(REPART, 0)] = 8
    for offset in range(3):
        f.processed(SOURCE, 0, offset)
    assert not f.caught_up() and c.listed_calls == 0
    for offset in range(3, 5):
        f.processed(SOURCE, 0, offset)
    for offset in range(8):
        f.processed(REPART, 0, offset)
    clock[0] += 2
    assert (
        f.caught_up()
    )  # the cached end is reached: the broker confirms it (a partition fetched by no one yet)
    assert c.listed_calls == 1  # both partitions' ends in one request
    c.listed[(REPART, 0)] = (0, 9)  # a record the fetches have not seen yet
    clock[0] += 2
    assert not f.caught_up()


def test_a_partition_emptied_by_retention_is_caught_up_and_its_start_is_asked_only_then():
    c, clock = FakeConsumer(), [0.0]
    f = InputFrontier(
        lambda: c, frozenset(), lambda t: t.startswith("edream.clock"), monotonic=lambda: clock[0]
    )
    c.listed[(SOURCE, 0)] = (5, 5)  # offsets 0-4 deleted, nothing processed here yet
    c.listed[(REPART, 0)] = (0, 0)
    c.committed_at[(SOURCE, 0)] = c.committed_at[(REPART, 0)] = -1001
    assert f.caught_up() and c.listed_calls == 2  # the ends, then the start of the one partition left
    c.listed[(SOURCE, 0)] = (5, 6)
    clock[0] += 2
    assert not f.caught_up()
