"""High watermarks that hold also on a broker whose LATEST offset is that of its last record *batch*.

The embedded broker (Tansu) answers ListOffsets(LATEST) with the base offset of a partition's last record batch
plus one, not with the offset of its last record plus one: after one batch of 6 records (offsets 0-5) it answers 1,
while a fetch returns all 6 (``tests/integration/test_runtime_stage.py`` shows it). Quix compares the high watermark
of a changelog partition with the changelog offset its local store holds, and restores a partition up to the high
watermark; with the short answer it refuses a store that is up to date (``InvalidStoreChangelogOffset``: a stage
that got a partition back after a rebalance, or restarted with kept state, stopped and hung closing its consumer)
and would end a restore before the last batch's later records.

:func:`true_high_watermark` fetches from the answered watermark - 1 (the last batch's base offset on such a broker,
the last record on a correct one) and answers the offset after the last record returned: one small fetch per
queried partition, done only when a stage is assigned partitions (cached queries are left alone).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

#: how long the probe waits for the last batch, seconds
PROBE_TIMEOUT_S = 5.0


def true_high_watermark(probe: Consumer, topic: str, partition: int, answered: int) -> int:
    """The offset after the last record of ``topic[partition]``, given the broker's answered high watermark."""
    if answered <= 0:
        return answered
    probe.assign([TopicPartition(topic, partition, answered - 1)])
    try:
        last, timeout = answered - 1, PROBE_TIMEOUT_S
        while (msg := probe.poll(timeout)) is not None:
            if msg.error() is None:
                last = max(last, msg.offset())
            timeout = 0.0  # the rest of the batch came with the first record
        return last + 1
    finally:
        probe.unassign()


def end_offset(consumer: Consumer, topic: str, partition: int, timeout: float = 10.0) -> int:
    """The offset after the last record of ``topic[partition]`` (a reader that must reach the end of a partition:
    a registry view, a snapshot); ``consumer`` must have no assignment yet (the probe assigns and unassigns it)."""
    answered = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
    return true_high_watermark(consumer, topic, partition, answered)


def _record_at(probe: Consumer, topic: str, partition: int, offset: int) -> tuple[int, int] | None:
    """(offset, timestamp ms) of the first record at or after ``offset``; None past the last one."""
    probe.assign([TopicPartition(topic, partition, offset)])
    try:
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = probe.poll(0.5)
            if msg is not None and msg.error() is None and msg.offset() >= offset:
                return msg.offset(), msg.timestamp()[1]
        return None
    finally:
        probe.unassign()


def offset_since(probe: Consumer, topic: str, partition: int, since_ms: int, end: int) -> int:
    """The offset of the first record of ``topic[partition]`` stamped at or after ``since_ms`` (UTC epoch ms), or
    ``end`` (the partition's end offset) when there is none: a binary search over record timestamps, which assumes
    they grow with offsets (producers' CreateTime on one clock). ListOffsets by timestamp would answer it in one
    request, but the embedded broker answers 0 for every time. ``probe`` must have no assignment yet."""
    lo, hi = 0, end
    while lo < hi:
        mid = (lo + hi) // 2
        found = _record_at(probe, topic, partition, mid)
        if found is None or found[1] >= since_ms:
            hi = mid
        else:
            lo = found[0] + 1
    return lo


class WatermarkProbe:
    """Wraps a Quix consumer's ``get_watermark_offsets`` so broker queries answer the true high watermark."""

    def __init__(self, consumer: Any, client_conf: dict[str, Any]):
        self._conf = client_conf | {
            "group.id": f"edream-watermarks-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 10,  # the last batch is there: do not wait for more
        }
        self._probe: Consumer | None = None
        self._answered = consumer.get_watermark_offsets
        consumer.get_watermark_offsets = self.get_watermark_offsets

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        lo, hi = self._answered(partition, timeout=timeout, cached=cached)
        if cached or hi <= lo:
            return lo, hi
        if self._probe is None:
            self._probe = Consumer(self._conf)
        return lo, true_high_watermark(self._probe, partition.topic, partition.partition, hi)

    def close(self) -> None:
        if self._probe is not None:
            self._probe.close()
            self._probe = None
