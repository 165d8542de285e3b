"""ClickHouse sinks of the VPP events (tables derived from the Avro contracts by ``edream.clickhouse``).

ReplacingMergeTree keyed by the deterministic business key, plus an insert dedup token over the batch's
event ids: replays and retried batches never duplicate rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, ensure_table, insert_rows
from edream.topology import Sink
from streams.vpp.events import TOPIC_CAPABILITY, TOPIC_CAPABILITY_REQUESTS, TOPIC_EXPORT

SINKS: dict[str, tuple[Sink, str]] = {
    "vpp_capability_requests": (
        Sink(
            name="vpp_capability_requests",
            topic=TOPIC_CAPABILITY_REQUESTS,
            table="vpp_capability_requests",
            order_by=["vpp_id", "request_id"],
        ),
        "VppCapabilityRequest",
    ),
    "vpp_capability": (
        Sink(
            name="vpp_capability",
            topic=TOPIC_CAPABILITY,
            table="vpp_capability",
            order_by=["vpp_id", "request_id"],
            version="computed_at",
        ),
        "VppCapability",
    ),
    "vpp_export": (
        Sink(
            name="vpp_export",
            topic=TOPIC_EXPORT,
            table="vpp_export",
            order_by=["vpp_id", "market", "slot_start", "evaluated_at"],
        ),
        "VppExportCapacity",
    ),
}


def sink_for(name: str, table: str | None = None) -> tuple[Sink, str]:
    """The sink and its contract name; ``table`` overrides the table name (tests use unique tables)."""
    sink, schema = SINKS[name]
    return (sink.model_copy(update={"table": table}) if table else sink), schema


def store(client: Any, sink: Sink, schema: str, records: Sequence[dict[str, Any]]) -> None:
    """Create the table if needed and insert the records idempotently."""
    if not records:
        return
    c = contract(schema)
    ensure_table(client, sink, c)
    enc = RowEncoder(c)
    token = hashlib.sha256("\n".join(sorted(r["event_id"] for r in records)).encode()).hexdigest()
    insert_rows(client, sink.table, enc.columns, [enc.row(r) for r in records], dedup_token=token)
