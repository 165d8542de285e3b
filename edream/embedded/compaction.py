"""Compaction for the embedded durable broker, a batch at a time: which stored batches of a compacted topic hold
only records that a later batch supersedes.

Kafka's ``cleanup.policy=compact`` keeps at least the latest record of every key. Tansu 0.6's S3 engine stores each
produced batch as one object and never compacts, so a changelog that updates the same keys every second grows by
a batch per second forever (and a restart reads all of it back). The janitor
(:class:`~edream.embedded.retention.RetentionJanitor`) deletes a whole batch once every key in it has a record in
a later batch: what is left still holds the latest record of every key (tombstones included), which is all a
reader of a compacted topic may rely on. A batch with a record without a key, a control batch or one that cannot
be read is never deleted, nor is a partition's newest batch.

Batches are Kafka v2 record batches (Tansu stores them as produced, lz4-compressed by our producers); they are read
with aiokafka's record parser (a dependency of the Faust stack already).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from typing import TypeVar

from aiokafka.record.memory_records import MemoryRecords

#: a batch's keys, as 16-byte digests (a batch of a 50,000-meter changelog holds many long keys)
Keys = frozenset[bytes]
B = TypeVar("B", bound=Hashable)


def batch_keys(stored: bytes) -> Keys | None:
    """The keys of the records in one stored batch, or None when the batch must stay (a record without a key, a
    control batch, or bytes that are no record batch)."""
    try:
        records = MemoryRecords(stored)
        keys: set[bytes] = set()
        batches = 0
        while (batch := records.next_batch()) is not None:
            batches += 1
            if getattr(batch, "is_control_batch", False) or not batch.validate_crc():
                return None
            for r in batch:
                if r.key is None:
                    return None
                keys.add(hashlib.blake2b(r.key, digest_size=16).digest())
        return frozenset(keys) if batches else None
    except Exception:  # noqa: BLE001 - an unreadable batch is kept, never deleted
        return None


def superseded(batches: Sequence[tuple[B, Keys | None]]) -> list[B]:
    """Of a partition's batches (oldest first, each with its :func:`batch_keys`), those whose every key has a
    record in a later batch; never the newest, never one with unknown keys (None)."""
    seen: set[bytes] = set()
    out: list[B] = []
    for i, (batch, keys) in enumerate(reversed(batches)):
        if keys is None:
            continue
        if i > 0 and keys <= seen:
            out.append(batch)
        else:
            seen |= keys
    out.reverse()
    return out
