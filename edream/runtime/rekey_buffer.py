"""Time alignment without the re-keyed source topics: the consumer buffer of a stage's Quix application.

Quix consumes the topics of a concatenated stream *time-aligned*: its buffer groups the assigned partitions by
partition number and pops the record with the smallest timestamp of a group, and only while no other partition of
the group is empty without being known idle. A stage's re-keyed source topic (``meter.readings.raw.v1`` for
``flex-prosumers``) has the same partition numbers as the repartition topic it feeds, so it sat in the same group
as its own output: each re-keyed record emptied the repartition partition's buffer, the group waited for a fetch
to bring that record back from the broker, and the stage consumed its source at the pace of that round trip (about
2,000 of 10,000 readings/s, the main thread idle ~80 % of the time in the e2e bench at 50,000 meters).

Re-keying is stateless and keeps each source partition's order, so a source partition needs no alignment with
anything. :class:`SourcesApartBuffer` gives every partition of a re-keyed source topic a group of its own; the
stage's state inputs (repartition topics, direct inputs, the clock) stay time-aligned exactly as before. A source
partition's buffer is paused when full like any other (Quix never pauses a one-partition group, which would let
it grow without bound), and :meth:`SourcesApartBuffer.pop` serves the groups round robin, so routing a source
backlog cannot starve the processing of what it routed.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import TopicPartition
from quixstreams.internal_consumer.buffering import InternalConsumerBuffer, PartitionBufferGroup
from quixstreams.models import SuccessfulConfluentKafkaMessageProto

#: a group's key: (partition, is it a re-keyed source topic's partition)
GroupKey = tuple[int, bool]


class SourcesApartBuffer(InternalConsumerBuffer):
    """Quix's consumer buffer (pinned API of quixstreams 3.28) with the ``sources`` topics' partitions apart."""

    def __init__(self, sources: frozenset[str], max_partition_buffer_size: int = 10000):
        super().__init__(max_partition_buffer_size=max_partition_buffer_size)
        self.sources = sources
        self._groups: dict[GroupKey, PartitionBufferGroup] = {}
        self._topics: dict[GroupKey, set[str]] = {}
        self._ring: list[PartitionBufferGroup] = []  # the groups in pop order (rebuilt on assignment)
        self._next = 0  # where the next pop starts (round robin over the groups)

    def _key(self, topic: str, partition: int) -> GroupKey:
        return (partition, topic in self.sources)

    def assign_partitions(self, topic_partitions: list[TopicPartition]) -> None:
        for tp in sorted(topic_partitions, key=lambda t: t.partition):
            key = self._key(tp.topic, tp.partition)
            group = self._groups.setdefault(
                key, PartitionBufferGroup(tp.partition, self._max_partition_buffer_size)
            )
            group.assign_partition(topic=tp.topic)
            self._topics.setdefault(key, set()).add(tp.topic)
        self._ring = list(self._groups.values())

    def revoke_partitions(self, topic_partitions: list[TopicPartition]) -> None:
        for tp in topic_partitions:
            key = self._key(tp.topic, tp.partition)
            group = self._groups.get(key)
            if group is not None and tp.topic in self._topics.get(key, ()):
                group.revoke_partition(topic=tp.topic)
                self._topics[key].discard(tp.topic)

    def feed(
        self,
        messages: Iterable[SuccessfulConfluentKafkaMessageProto],
        high_watermarks: dict[tuple[str, int], int],
        positions: dict[tuple[str, int], int] | None = None,
    ) -> None:
        for message in messages:
            self._groups[self._key(message.topic(), message.partition())].append(message=message)
        positions = positions or {}
        for key, group in self._groups.items():
            topics = self._topics[key]
            group.set_high_watermarks(
                {t: w for (t, p), w in high_watermarks.items() if p == key[0] and t in topics}
            )
            group.set_positions({t: o for (t, p), o in positions.items() if p == key[0] and t in topics})

    def pop(self) -> SuccessfulConfluentKafkaMessageProto | None:
        groups = self._ring
        for i in range(len(groups)):
            j = (self._next + i) % len(groups)
            message = groups[j].pop()
            if message is not None:
                self._next = j + 1
                return message
        return None

    def pause_full(self) -> list[tuple[str, int]]:
        tps = []
        for (_, source), group in self._groups.items():
            if not source:
                tps += group.pause_full()
                continue
            for buffer in group._partition_buffers_values:  # noqa: SLF001 - Quix's group pauses none alone
                if not buffer.paused and buffer.full():
                    buffer.pause()
                    tps.append((buffer.topic, buffer.partition))
        return tps

    def resume_empty(self) -> list[tuple[str, int]]:
        tps = []
        for group in self._groups.values():
            tps += group.resume_empty()
        return tps

    def clear(self, topic: str, partition: int) -> None:
        group = self._groups.get(self._key(topic, partition))
        if group is not None:
            group.clear(topic)

    def close(self) -> None:
        self._groups.clear()
        self._topics.clear()
        self._ring = []
