"""The REST API's resources (the seed's flexibility, forecasting, baseline and market interfaces, catalogue §7.2):
which ClickHouse sink table each read resource lists and which topic each submission is produced to.

Everything else comes from ``topology.yaml`` and the Avro contracts: a read resource's row model is its sink
topic's contract, its filters are the table's identifier columns (``*_id`` and the sorting key's string columns),
a submission's topic is the one topic carrying its contract and its Kafka key the field the topic is keyed by.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edream.avro_schemas import contract
from edream.topology import Sink, Topic, Topology, topic_names


@dataclass(frozen=True)
class ReadResource:
    """``GET /api/v1/<path>``: rows of sink ``sink``, newest ``time_column`` first (UTC epoch ms)."""

    path: str
    sink: str
    time_column: str
    summary: str


@dataclass(frozen=True)
class SubmitResource:
    """``POST /api/v1/<path>``: one ``schema`` record produced to ``topic``; the stage that reads it decides
    (its outputs, or a Rejection naming the record's id, are read back through the read resources)."""

    path: str
    topic: str
    schema: str
    id_field: str
    summary: str


READS: tuple[ReadResource, ...] = (
    ReadResource("flex/requests", "flex_requests", "created_at", "DSO flexibility requests"),
    ReadResource("flex/offers", "flex_offers", "created_at", "The aggregator's offers per request"),
    ReadResource("flex/acceptances", "flex_acceptances", "created_at", "DSO decisions on offers"),
    ReadResource("flex/orders", "flex_orders", "created_at", "Flexibility orders (every revision)"),
    ReadResource(
        "flex/deviations", "flex_deviations", "ts", "Delivery deviations per order, prosumer and slot"
    ),
    ReadResource(
        "flex/dr-responses",
        "flex_dr_responses",
        "responded_at",
        "Sites' opt-in/opt-out of the DR events carrying their part of an order (OpenADR)",
    ),
    ReadResource("flex/settlements", "settlement_flex", "window_start", "Flexibility settlements"),
    ReadResource("forecasts", "forecasts", "issued_at", "Load and generation forecasts per entity"),
    ReadResource("baselines", "baselines", "isp_start", "Customer baselines per prosumer and 15-min ISP"),
    ReadResource("market/orders", "market_orders_accepted", "slot_start", "Validated P2P market orders"),
    ReadResource("market/clearing", "market_clearing", "slot_start", "Clearing result per market session"),
    ReadResource("market/trades", "market_trades", "slot_start", "Matched P2P trades"),
    ReadResource("market/settlements", "market_settlement", "window_start", "P2P market settlements"),
    ReadResource(
        "devices/commands",
        "device_commands",
        "valid_from",
        "Set-points sent to field devices (flex dispatch)",
    ),
    ReadResource(
        "devices/command-results",
        "device_command_results",
        "executed_at",
        "What the connectors did with each device command (EXECUTED, FAILED, EXPIRED...)",
    ),
    ReadResource("rejections", "rejections", "rejected_at", "Refused business requests, with the reason"),
    ReadResource(
        "uftp/messages", "uftp_messages", "recorded_at", "UFTP messages received from and sent to DSOs"
    ),
)

SUBMITS: tuple[SubmitResource, ...] = (
    SubmitResource(
        "flex/requests",
        "flex.requests.v1",
        "FlexRequest",
        "request_id",
        "Submit a DSO's signed flexibility request",
    ),
    SubmitResource(
        "flex/acceptances",
        "flex.acceptances.v1",
        "FlexAcceptance",
        "acceptance_id",
        "Submit a DSO's signed decision on an offer",
    ),
    SubmitResource(
        "market/orders",
        "market.orders.v1",
        "MarketOrder",
        "order_id",
        "Submit a participant's signed P2P market order",
    ),
)


class ResourceError(LookupError):
    """A declared resource does not match ``topology.yaml`` or its contract (names the resource and field)."""


@dataclass(frozen=True)
class BoundRead:
    """A read resource resolved against the topology: its table, contract fields and filter columns."""

    resource: ReadResource
    table: str
    schema: str
    fields: tuple[dict[str, Any], ...]
    filters: tuple[str, ...]


@dataclass(frozen=True)
class BoundSubmit:
    resource: SubmitResource
    topic: str
    key_field: str | None


def _sink(topology: Topology, name: str) -> Sink:
    for s in topology.sinks:
        if s.name == name:
            return s
    raise ResourceError(f"topology.yaml: no sink {name!r}")


def _is_string(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        return len(non_null) == 1 and _is_string(non_null[0])
    if isinstance(avro_type, dict):
        return avro_type.get("type") == "enum"
    return avro_type == "string"


def bind_read(topology: Topology, resource: ReadResource) -> BoundRead:
    sink = _sink(topology, resource.sink)
    schema = Path(topology.topic(sink.topic).value_schema).stem
    fields = tuple(contract(schema).raw["fields"])
    names = {f["name"] for f in fields}
    if resource.time_column not in names:
        raise ResourceError(
            f"REST resource {resource.path}: time column {resource.time_column!r} is not a field of {schema}"
        )
    filters = tuple(
        f["name"]
        for f in fields
        if _is_string(f["type"]) and (f["name"].endswith("_id") or f["name"] in sink.order_by)
    )
    return BoundRead(resource, sink.table, schema, fields, filters)


def bind_submit(topology: Topology, resource: SubmitResource) -> BoundSubmit:
    try:  # a renamed topology (tests) keeps the canonical name before its suffix
        topic: Topic = topology.topic(topic_names(topology).get(resource.topic, resource.topic))
    except KeyError:
        raise ResourceError(
            f"REST resource {resource.path}: no topic {resource.topic} in topology.yaml"
        ) from None
    if Path(topic.value_schema).stem != resource.schema:
        raise ResourceError(
            f"REST resource {resource.path}: topic {topic.name} carries {topic.value_schema}, not {resource.schema}"
        )
    names = {f["name"] for f in contract(resource.schema).raw["fields"]}
    if resource.id_field not in names:
        raise ResourceError(
            f"REST resource {resource.path}: {resource.id_field} is not a field of {resource.schema}"
        )
    return BoundSubmit(resource, topic.name, topic.key if topic.key in names else None)
