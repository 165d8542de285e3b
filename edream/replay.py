"""Re-process a time range by moving a consumer group's committed offsets back to a timestamp.

Safe because every sink is idempotent (deterministic ids, ReplacingMergeTree, insert dedup tokens): events the
group already processed are processed again and collapse into the same rows. Kafka cannot stop a consumer at an
end time, so after the reset the group reads from ``start`` to the head of each partition; ``end`` only sizes
the range for the operator. The group's consumers must be stopped while offsets are committed (Kafka refuses
commits from outside an active group); start them again afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from edream.kafka import client_config


class ReplayError(RuntimeError):
    pass


def parse_time_ms(value: str) -> int:
    """UTC epoch ms from ``1700000000000`` or an ISO-8601 time (naive = UTC), e.g. ``2026-11-23T10:00Z``."""
    v = value.strip()
    if v.isdigit():
        return int(v)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReplayError(f"not a time: {value!r} (ISO-8601 or epoch ms)") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class PartitionReset:
    """One partition's move: committed offset now, offset to commit, and message counts (from the offsets)."""

    topic: str
    partition: int
    committed: int | None  # None = the group never committed here
    target: int
    end: int  # first offset after the range (high watermark if the range reaches the head)
    high: int

    @property
    def in_range(self) -> int:
        return max(0, self.end - self.target)

    @property
    def reprocessed(self) -> int:
        """Messages the group will read again (or for the first time) after the reset."""
        return max(0, self.high - self.target)


@dataclass(frozen=True)
class PartitionScan:
    """Offsets found by reading one partition: first offset at/after ``start`` and ``end``, and the head."""

    first_at_start: int | None
    first_at_end: int | None
    head: int


def scan_partition(
    bootstrap: str, tp: TopicPartition, start_ms: int, end_ms: int | None, timeout: float = 10.0
) -> PartitionScan:
    """Read the partition once by message timestamp (the embedded broker answers ListOffsets-by-time and
    watermarks imprecisely, so the offsets are taken from the messages themselves; O(messages))."""
    c = Consumer(
        client_config(bootstrap)
        | {"group.id": "edream-replay-scan", "enable.auto.commit": False, "enable.partition.eof": True}
    )
    first_start = first_end = None
    head = 0
    try:
        c.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)])
        idle = 0.0
        while idle < timeout:
            m = c.poll(0.5)
            if m is None:
                idle += 0.5
                continue
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise ReplayError(f"reading {tp.topic}[{tp.partition}]: {m.error()}")
            idle = 0.0
            ts = m.timestamp()[1]
            head = m.offset() + 1
            if first_start is None and ts >= start_ms:
                first_start = m.offset()
            if end_ms is not None and first_end is None and ts >= end_ms:
                first_end = m.offset()
    finally:
        c.close()
    return PartitionScan(first_start, first_end, head)


def plan(
    consumer: Consumer,
    bootstrap: str,
    group_topics: list[str],
    start_ms: int,
    end_ms: int | None,
    timeout: float = 10.0,
) -> list[PartitionReset]:
    """Where each partition of ``group_topics`` would be reset (nothing is committed)."""
    md = consumer.list_topics(timeout=timeout)
    missing = [t for t in group_topics if t not in md.topics]
    if missing:
        raise ReplayError(f"unknown topic(s): {', '.join(missing)}")
    tps = [TopicPartition(t, p) for t in group_topics for p in sorted(md.topics[t].partitions)]
    committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(tps, timeout=timeout)}
    out = []
    for tp in tps:
        scan = scan_partition(bootstrap, tp, start_ms, end_ms, timeout)
        c = committed[(tp.topic, tp.partition)]
        target = scan.head if scan.first_at_start is None else scan.first_at_start
        end = scan.head if scan.first_at_end is None else max(target, scan.first_at_end)
        out.append(PartitionReset(tp.topic, tp.partition, c if c >= 0 else None, target, end, scan.head))
    return out


def apply(consumer: Consumer, resets: list[PartitionReset], timeout: float = 10.0) -> None:
    """Commit the planned offsets for the consumer's group (its workers must be stopped)."""
    try:
        consumer.commit(
            offsets=[TopicPartition(r.topic, r.partition, r.target) for r in resets], asynchronous=False
        )
    except KafkaException as exc:
        raise ReplayError(
            f"commit refused (are the group's workers still running? stop them first): {exc}"
        ) from exc


def group_consumer(bootstrap: str, group_id: str) -> Consumer:
    """A consumer of ``group_id`` that never subscribes (so it does not join or rebalance the group)."""
    return Consumer(client_config(bootstrap) | {"group.id": group_id, "enable.auto.commit": False})


def summary(
    resets: list[PartitionReset], group_id: str, start_ms: int, end_ms: int | None, applied: bool
) -> dict[str, Any]:
    return {
        "group": group_id,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "applied": applied,
        "partitions": len(resets),
        "messages_in_range": sum(r.in_range for r in resets),
        "messages_to_reprocess": sum(r.reprocessed for r in resets),
        "resets": [asdict(r) for r in resets],
    }
