"""Avro messages through the real broker in both framings, decoded and landed in a chDB table, idempotently."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.kafka import producer_config
from edream.serde import Serde
from edream.sink_writer import Positioned, SinkWriter
from edream.topology import Sink

pytestmark = pytest.mark.integration


def _measurements(n: int) -> list[dict]:
    base = sample_value(contract("Measurement").raw)
    return [
        dict(
            base,
            event_id=f"e{i}",
            device_id=f"dev-{i % 7}",
            ts=1_700_000_000_000 + i * 5000,
            seq=i,
            value=float(i),
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("registry", [None, "mock://roundtrip"], ids=["single-object", "confluent"])
def test_roundtrip_broker_to_clickhouse(
    test_settings, unique_topic, chdb_client, unique_table, registry, read_topic
):
    topic = unique_topic("meter.readings", partitions=3)
    serde = Serde(registry_url=registry)
    records = _measurements(200)
    p = Producer(producer_config(test_settings))
    for r in records:
        p.produce(topic, key=r["device_id"].encode(), value=serde.encode("Measurement", r, topic))
    assert p.flush(15) == 0

    msgs = read_topic(topic, len(records))
    assert len(msgs) == len(records)
    decoded = [serde.decode(m.value(), topic) for m in msgs]
    assert {n for n, _ in decoded} == {"Measurement"}
    assert sorted(r["event_id"] for _, r in decoded) == sorted(r["event_id"] for r in records)
    # keyed by device: every device's readings are on one partition, in order
    by_dev: dict[str, set[int]] = {}
    for m in msgs:
        by_dev.setdefault(m.key().decode(), set()).add(m.partition())
    assert all(len(parts) == 1 for parts in by_dev.values())

    table = unique_table("measurements")
    sink = Sink(
        name="m", topic=topic, table=table, order_by=["device_id", "quantity", "phase", "ts"], version="seq"
    )
    writer = SinkWriter(chdb_client, sink, contract("Measurement"))
    batch = [
        Positioned(r, m.topic(), m.partition(), m.offset()) for (_, r), m in zip(decoded, msgs, strict=True)
    ]
    writer.write(batch)
    writer.write(batch)  # a retried batch: deduplicated by ClickHouse on its data
    assert chdb_client.query(f"SELECT count() FROM {table}").result_rows[0][0] == 200
    writer.write(batch[:50])  # a replay batched differently: collapsed by ReplacingMergeTree
    assert chdb_client.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0] == 200
    row = chdb_client.query(
        f"SELECT value, unit FROM {table} FINAL WHERE toUnixTimestamp64Milli(ts) = {1_700_000_000_000 + 5000 * 42}"
    )
    assert row.result_rows == [(42.0, records[42]["unit"])]
