"""Has a stage processed everything that was on its inputs? The gate of ticks that must not overtake input.

A tick means "the wall clock is at least ``now_ms``". For most stages that is enough; a stage that *closes*
something on the wall clock (the anchoring stage closes a settlement window for good once its end + grace has
passed) must not close it while records of that window are still waiting on the broker, e.g. after a restart,
while a second worker is still re-keying its share of the input, or while the stage lags. Quix aligns
concatenated topics on record time only among partitions a worker already fetched; a record still on a source
topic (re-keyed by another worker, or not yet re-keyed) is invisible to that alignment.

:meth:`InputFrontier.caught_up` answers, when asked, whether:

1. every partition of every **re-keyed source topic** has been consumed *and committed* by the stage's consumer
   group (any worker): what is committed there has been produced to the repartition topic before the commit
   (Quix flushes the producer before it commits); and afterwards
2. every input partition **this worker processes** (the repartition topics' and the direct inputs' partitions
   assigned to it) has been processed up to its high watermark (the last offset a record handler finished, not
   the consumer position, which runs ahead by Quix's time-alignment buffer).

The answer is cached for ``ttl_s`` (a few broker round trips per check). High watermarks: the consumer's cached
ones (from its fetch responses) where it fetches the partition, else the broker's ``ListOffsets``. The embedded
Tansu broker answers ``ListOffsets`` with the last *batch's* base offset + 1, so for partitions fetched by
another worker the last batch may be seen only once this worker's own fetches pass it; the grace period of the
stage covers that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaException, TopicPartition

log = logging.getLogger(__name__)


class InputFrontier:
    """``consumer()`` gives the stage's (Quix) consumer; ``sources``: the re-keyed input topics; ``ignored(topic)``:
    assigned topics that are not input (the clock topic, changelogs)."""

    def __init__(
        self,
        consumer: Callable[[], Any],
        sources: frozenset[str],
        ignored: Callable[[str], bool],
        ttl_s: float = 1.0,
        timeout_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._consumer, self.sources, self.ignored = consumer, sources, ignored
        self.ttl_s, self.timeout_s, self.monotonic = ttl_s, timeout_s, monotonic
        self._next: dict[tuple[str, int], int] = {}
        self._partitions: dict[str, list[int]] = {}
        self._answer: tuple[float, bool] | None = None

    def processed(self, topic: str, partition: int, offset: int) -> None:
        """A record handler finished ``offset`` of ``topic``/``partition``."""
        key = (topic, partition)
        if offset + 1 > self._next.get(key, -1):
            self._next[key] = offset + 1

    def caught_up(self) -> bool:
        now = self.monotonic()
        if self._answer is not None and now - self._answer[0] < self.ttl_s:
            return self._answer[1]
        try:
            answer = self._check(self._consumer())
        except Exception as exc:  # noqa: BLE001 - a broker that does not answer: not known to be caught up
            log.info("input frontier unknown: %s: %s", type(exc).__name__, exc)
            answer = False
        self._answer = (self.monotonic(), answer)
        return answer

    # -- the check -------------------------------------------------------------------------------------------
    def _check(self, consumer: Any) -> bool:
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        sources = [
            TopicPartition(t, p) for t in sorted(self.sources) for p in self._source_partitions(consumer, t)
        ]
        to_confirm: list[tuple[TopicPartition, int, int]] = []  # (partition, next offset, cached high)
        if sources:
            for tp in consumer.committed(sources, timeout=self.timeout_s):
                fetched = (tp.topic, tp.partition) in assigned
                if self._behind_by_fetches(consumer, tp, tp.offset, fetched, to_confirm):
                    return False
        mine = [
            TopicPartition(t, p) for t, p in sorted(assigned) if t not in self.sources and not self.ignored(t)
        ]
        unseen = [tp for tp in mine if (tp.topic, tp.partition) not in self._next]
        committed = {
            (tp.topic, tp.partition): tp.offset
            for tp in (consumer.committed(unseen, timeout=self.timeout_s) if unseen else [])
        }
        for tp in mine:
            key = (tp.topic, tp.partition)
            done = self._next.get(key, committed.get(key, -1))
            if self._behind_by_fetches(consumer, tp, done, True, to_confirm):
                return False
        return not self._behind_on_broker(consumer, to_confirm)

    @staticmethod
    def _behind_by_fetches(
        consumer: Any, tp: TopicPartition, next_offset: int, fetched: bool, to_confirm: list
    ) -> bool:
        """Is anything at or past ``next_offset`` (negative: nothing done yet) on ``tp`` by the watermarks of this
        worker's fetch responses (no broker round trip: a stage that lags, the usual case under load, is known to
        be behind without asking)? If not known to be behind, ``tp`` is added to ``to_confirm``."""
        part = TopicPartition(tp.topic, tp.partition)
        cached = -1
        if fetched:
            cached_low, cached = consumer.get_watermark_offsets(part, cached=True)
            if cached >= 0 and max(next_offset, cached_low) < cached:
                return True
        to_confirm.append((part, next_offset, cached))
        return False

    def _behind_on_broker(self, consumer: Any, to_confirm: list[tuple[TopicPartition, int, int]]) -> bool:
        """The broker's ends of the partitions the fetches showed no backlog on, asked in one ListOffsets request
        (a round trip per partition took 9-13 % of the intervals stage's loop at 10,000 readings/s); the start
        of a partition is asked only where something seems left to process (nothing done yet, retention may have
        deleted it)."""
        if not to_confirm:
            return False
        ends = self._offsets(consumer, [tp for tp, _, _ in to_confirm], OFFSET_END)
        left = [
            (tp, next_offset, max(end, cached))
            for (tp, next_offset, cached), end in zip(to_confirm, ends, strict=True)
            if next_offset < max(end, cached)
        ]
        starts = self._offsets(consumer, [tp for tp, _, _ in left], OFFSET_BEGINNING) if left else []
        return any(
            max(next_offset, start) < high for (_, next_offset, high), start in zip(left, starts, strict=True)
        )

    def _offsets(self, consumer: Any, parts: list[TopicPartition], which: int) -> list[int]:
        """The broker's end (``OFFSET_END``) or start (``OFFSET_BEGINNING``) offset of each partition, one request;
        a partition it could not answer for makes the whole answer unknown (raises)."""
        answers = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, which) for tp in parts], timeout=self.timeout_s
        )
        failed = [tp for tp in answers if tp.error is not None]
        if failed:
            raise KafkaException(failed[0].error)
        return [tp.offset for tp in answers]

    def _source_partitions(self, consumer: Any, topic: str) -> list[int]:
        if topic not in self._partitions:
            meta = consumer.list_topics(topic, timeout=self.timeout_s).topics[topic]
            if meta.error is not None or not meta.partitions:
                raise RuntimeError(f"no metadata for {topic}: {meta.error}")
            self._partitions[topic] = sorted(meta.partitions)
        return self._partitions[topic]
