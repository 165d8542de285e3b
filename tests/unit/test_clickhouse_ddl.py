from __future__ import annotations

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, column_type, table_ddl
from edream.topology import Sink


def test_column_types():
    assert column_type("string") == "String"
    assert column_type(["null", "double"]) == "Nullable(Float64)"
    assert column_type({"type": "long", "logicalType": "timestamp-millis"}) == "DateTime64(3, 'UTC')"
    assert column_type({"type": "enum", "name": "E", "symbols": ["A"]}) == "LowCardinality(String)"
    assert column_type({"type": "array", "items": "string"}) == "Array(String)"
    assert column_type({"type": "array", "items": {"type": "record", "name": "R", "fields": []}}) == "String"


def test_ddl_is_replacing_merge_tree_with_dedup_window():
    sink = Sink(
        name="f",
        topic="forecast.profiles.v1",
        table="forecasts",
        order_by=["entity_id", "issued_at"],
        version="issued_at",
        ttl="toDateTime(issued_at) + INTERVAL 1 DAY",
    )
    ddl = table_ddl(sink, contract("Forecast"))
    assert "ENGINE = ReplacingMergeTree(issued_at)" in ddl
    assert "ORDER BY (entity_id, issued_at)" in ddl
    assert "non_replicated_deduplication_window" in ddl
    assert "`points` String" in ddl


def test_row_encoder_serialises_nested_records_as_json():
    rec = sample_value(contract("Forecast").raw)
    row = RowEncoder(contract("Forecast")).row(rec)
    points = row[RowEncoder(contract("Forecast")).columns.index("points")]
    assert points.startswith('[{"lower"')
