"""Batched, idempotent writes of decoded topic records into the sink's ClickHouse table.

Engine-independent: the Faust sink agent hands it batches of (record, topic, partition, offset).
Idempotency has two layers: the batch's dedup token (its topic/partition offset ranges) makes a retried batch a
no-op, and ReplacingMergeTree on the sink's ``order_by`` collapses replays that batch differently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edream.avro_schemas import AvroContract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.topology import Sink


@dataclass(frozen=True)
class Positioned:
    """A decoded record and where it came from."""

    record: dict[str, Any]
    topic: str
    partition: int
    offset: int


def batch_token(table: str, items: Iterable[Positioned]) -> str:
    """Deterministic token of a batch: the offset range it covers per topic-partition."""
    ranges: dict[tuple[str, int], list[int]] = {}
    for it in items:
        r = ranges.setdefault((it.topic, it.partition), [it.offset, it.offset])
        r[0], r[1] = min(r[0], it.offset), max(r[1], it.offset)
    desc = ";".join(f"{t}/{p}:{a}-{b}" for (t, p), (a, b) in sorted(ranges.items()))
    return f"{table}:" + hashlib.sha256(desc.encode()).hexdigest()[:32]


class SinkWriter:
    def __init__(self, client: Any, sink: Sink, contract: AvroContract):
        self.client, self.sink, self.contract = client, sink, contract
        self.encoder = RowEncoder(contract)
        self.rows_written = 0
        ensure_table(client, sink, contract)

    def write(self, batch: list[Positioned]) -> int:
        if not batch:
            return 0
        columns = self.encoder.columns_of([p.record for p in batch])
        insert_rows(
            self.client,
            self.sink.table,
            self.encoder.columns,
            columns,
            batch_token(self.sink.table, batch),
            column_oriented=True,
        )
        self.rows_written += len(batch)
        return len(batch)
