"""ClickHouse sinks of the flex topics (proposed for topology.yaml; tests use them with unique table names).

Dedup keys (ReplacingMergeTree ``ORDER BY``) are the deterministic business ids, so replays collapse.
"""

from __future__ import annotations

from edream.topology import Sink

SINKS: tuple[Sink, ...] = (
    Sink(name="flex_requests", topic="flex.requests.v1", table="flex_requests", order_by=["request_id"]),
    Sink(name="flex_offers", topic="flex.offers.v1", table="flex_offers", order_by=["offer_id"]),
    Sink(name="flex_orders", topic="flex.orders.v1", table="flex_orders", order_by=["order_id", "revision"]),
    Sink(
        name="flex_deviations",
        topic="flex.deviations.v1",
        table="flex_deviations",
        order_by=["order_id", "prosumer_id", "slot_start", "kind", "ts"],
        partition_by="toYYYYMM(slot_start)",
    ),
    Sink(
        name="settlement_flex",
        topic="settlement.flex.v1",
        table="settlement_flex",
        order_by=["settlement_id"],
        version="version",
    ),
)


def sink(name: str) -> Sink:
    return next(s for s in SINKS if s.name == name)
