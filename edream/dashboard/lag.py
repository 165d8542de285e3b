"""Consumer-group lag: high watermark minus committed offset, per topic, for the worker's group."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from edream.kafka import client_config


def partition_lag(high: int, committed: int) -> int:
    """Messages not yet processed in one partition; nothing committed yet (negative offset) = all of them
    from the low watermark, approximated by ``high`` (the broker may have deleted older segments)."""
    if committed < 0:
        return max(0, high)
    return max(0, high - committed)


def consumer_lag(
    bootstrap: str, group_id: str, topics: Iterable[str], timeout: float = 5.0
) -> dict[str, Any]:
    """``{"total": n, "by_topic": {topic: n}}`` for ``group_id``; blocking (run it off the event loop).

    Uses a throw-away consumer that never joins the group (no rebalance of the workers)."""
    c = Consumer(
        client_config(bootstrap)
        | {
            "group.id": group_id,
            "enable.auto.commit": False,
            "client.id": f"edream-lag-{uuid.uuid4().hex[:6]}",
        }
    )
    try:
        md = c.list_topics(timeout=timeout)
        tps = [
            TopicPartition(t, p)
            for t in sorted(set(topics))
            if t in md.topics
            for p in sorted(md.topics[t].partitions)
        ]
        committed = c.committed(tps, timeout=timeout) if tps else []
        # every partition's high watermark in one ListOffsets round (one request per broker, not one per partition:
        # sequential per-partition queries took over 60 s on a loaded machine)
        admin = AdminClient(client_config(bootstrap))
        latest = admin.list_offsets(
            {TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in committed},
            request_timeout=timeout,
        )
        highs = {(tp.topic, tp.partition): fut.result(timeout).offset for tp, fut in latest.items()}
        by_topic: dict[str, int] = {}
        for tp in committed:
            high = highs[(tp.topic, tp.partition)]
            by_topic[tp.topic] = by_topic.get(tp.topic, 0) + partition_lag(high, tp.offset)
        return {"total": sum(by_topic.values()), "by_topic": by_topic}
    finally:
        c.close()
