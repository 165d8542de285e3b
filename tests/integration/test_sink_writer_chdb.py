"""SinkWriter on real chDB: idempotent on content and deterministic ids (never offsets), bad rows isolated.

Regression tests of issue 14: a new batch reusing an old offset range (broker restart) was dropped as a duplicate;
dead letters of different stages/runs at the same position collapsed; one batch with bad timestamps failed as a
whole and was retried for minutes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edream.avro_samples import sample_value
from edream.avro_schemas import contract
from edream.clickhouse import is_data_error
from edream.sink_writer import ClickHouseTransient, Positioned, SinkWriter
from edream.topology import Sink, load_topology
from streams.deadletter import dead_letter

pytestmark = pytest.mark.integration

TOPIC = "meter.readings.raw.v1"
T0 = 1_795_440_000_000  # 2026-11-23T12:00Z
TOPOLOGY = load_topology(Path(__file__).resolve().parents[2] / "topology.yaml")


def _sink(name: str, table: str) -> Sink:
    return next(s for s in TOPOLOGY.sinks if s.name == name).model_copy(update={"table": table, "ttl": None})


def _reading(device: str, i: int, **over) -> dict:
    base = sample_value(contract("Measurement").raw)
    ts = T0 + i * 5000
    rec = dict(base, device_id=device, quantity="P_ACTIVE", phase="TOTAL", ts=ts, seq=i, value=float(i))
    rec["event_id"] = f"c/{device}/P_ACTIVE/TOTAL/{ts}"
    return {**rec, **over}


def _batch(records: list[dict], first_offset: int = 0) -> list[Positioned]:
    return [
        Positioned(r, TOPIC, 0, first_offset + i, b"k", f"raw-{r['event_id']}".encode())
        for i, r in enumerate(records)
    ]


def _count(client, table: str, final: bool = False) -> int:
    return client.query(f"SELECT count() FROM {table}{' FINAL' if final else ''}").result_rows[0][0]


def test_new_records_at_reused_offsets_are_kept_and_replays_collapse(chdb_client, unique_table):
    table = unique_table("measurements")
    writer = SinkWriter(chdb_client, _sink("measurements", table), contract("Measurement"))
    batch_a = _batch([_reading("dev-a", i) for i in range(10)])  # offsets 0..9
    batch_b = _batch(
        [_reading("dev-b", i) for i in range(10)]
    )  # new broker: offsets 0..9 again, other readings
    assert writer.write(batch_a).written == 10
    assert writer.write(batch_b).written == 10
    assert _count(chdb_client, table) == 20  # B was not discarded as a duplicate of A

    writer.write(batch_a)  # an identical retry: deduplicated by ClickHouse on the data, not even inserted
    assert _count(chdb_client, table) == 20
    writer.write(
        _batch([_reading("dev-a", i) for i in range(3, 10)], first_offset=100)
    )  # replay, other batching
    distinct = chdb_client.query(f"SELECT uniqExact(event_id) FROM {table}").result_rows[0][0]
    assert distinct == 20
    assert _count(chdb_client, table, final=True) == distinct


def test_dead_letters_of_other_stages_payloads_and_runs_are_kept(chdb_client, unique_table):
    table = unique_table("deadletters")
    writer = SinkWriter(chdb_client, _sink("deadletters", table), contract("DeadLetter"))
    pos = ("meter.readings.raw.v1", 0, 7)
    letters = [
        dead_letter(*pos, b"k", b"payload-1", "sink:measurements", "bad ts"),
        dead_letter(*pos, b"k", b"payload-1", "intervals", "bad ts"),  # another stage, same message
        dead_letter(*pos, b"k", b"payload-2", "sink:measurements", "bad ts"),  # offset reused after a restart
    ]
    writer.write([Positioned(dl, "platform.deadletter.v1", 0, i) for i, dl in enumerate(letters)])
    assert _count(chdb_client, table, final=True) == 3

    replay = dead_letter(
        *pos, b"k", b"payload-1", "sink:measurements", "bad ts", failed_at=letters[0]["failed_at"] + 9
    )
    assert replay["letter_id"] == letters[0]["letter_id"]
    writer.write([Positioned(replay, "platform.deadletter.v1", 0, 0)])  # replayed letter, new failed_at
    assert _count(chdb_client, table, final=True) == 3
    distinct = chdb_client.query(f"SELECT uniqExact(letter_id) FROM {table}").result_rows[0][0]
    assert distinct == 3


def test_bad_rows_are_rejected_with_reasons_and_the_rest_is_written(chdb_client, unique_table):
    table = unique_table("measurements")
    writer = SinkWriter(chdb_client, _sink("measurements", table), contract("Measurement"))
    good = [_reading("dev-ok", i) for i in range(20)]
    year_2300 = _reading("dev-bad", 1, ts=10_413_792_000_000 + 3_600_000)
    nan = _reading("dev-bad", 2, value=math.nan)
    long_id = _reading("dev-bad", 3, device_id="x" * 100_000)
    batch = _batch(good[:10] + [year_2300, nan, long_id] + good[10:])

    result = writer.write(batch)
    assert result.written == 20 and result.inserts == 1
    reasons = {r.item.offset: (r.error_type, r.reason) for r in result.rejected}
    assert reasons.keys() == {10, 11, 12}
    assert (
        reasons[10][0] == "SinkValidationError"
        and "column `ts`" in reasons[10][1]
        and "2299-12-31" in reasons[10][1]
    )
    assert "column `value`: not a finite number: nan" in reasons[11][1]
    assert "column `device_id`: 100000 characters" in reasons[12][1]
    assert all(r.item.raw == f"raw-{r.item.record['event_id']}".encode() for r in result.rejected)
    assert _count(chdb_client, table) == 20
    assert chdb_client.query(f"SELECT uniqExact(device_id) FROM {table}").result_rows == [(1,)]


def test_rows_clickhouse_refuses_are_isolated_by_bisection(chdb_client, unique_table):
    """With pre-validation switched off, values clickhouse-connect cannot encode still cost only their rows."""
    table = unique_table("measurements")
    writer = SinkWriter(chdb_client, _sink("measurements", table), contract("Measurement"))
    writer.validator.invalid_rows = lambda columns: {}  # let bad values reach ClickHouse
    records = [_reading("dev", i) for i in range(100)]
    records[17] = _reading("dev", 17, seq=2**70)  # does not fit Int64
    records[80] = _reading("dev", 80, ts="not a time")
    result = writer.write(_batch(records))
    assert sorted(r.item.offset for r in result.rejected) == [17, 80]
    assert {r.error_type for r in result.rejected} == {"ClickHouseRejected"}
    assert result.written == 98 and 2 < result.inserts <= 1 + writer.max_split_inserts
    assert _count(chdb_client, table) == 98


def test_a_batch_over_too_many_partitions_is_split_and_fully_written(chdb_client, unique_table):
    """Readings spread over 150 months exceed max_partitions_per_insert_block (100): ClickHouse refuses the
    batch as a whole, bisection writes it in parts and no row is lost."""
    table = unique_table("measurements")
    writer = SinkWriter(chdb_client, _sink("measurements", table), contract("Measurement"))
    month_ms = 31 * 86_400_000
    records = [_reading("dev", i, ts=T0 - i * month_ms) for i in range(150)]
    result = writer.write(_batch(records))
    assert result.rejected == [] and result.written == 150 and result.inserts >= 3
    assert _count(chdb_client, table) == 150


def test_unreachable_table_is_transient_not_a_data_error(chdb_client, unique_table):
    """A failure that is not about the rows (here: the table is gone) must be retried, never dead-lettered."""
    table = unique_table("measurements")
    writer = SinkWriter(chdb_client, _sink("measurements", table), contract("Measurement"))
    chdb_client.command(f"DROP TABLE {table}")
    with pytest.raises(ClickHouseTransient) as err:
        writer.write(_batch([_reading("dev", 1)]))
    assert not is_data_error(err.value.__cause__)


def test_old_dedup_key_is_rebuilt_with_the_new_one_and_rows_are_kept(chdb_client, unique_table):
    table = unique_table("deadletters")
    old = _sink("deadletters", table).model_copy(update={"order_by": ["source_topic", "partition", "offset"]})
    SinkWriter(chdb_client, old, contract("DeadLetter")).write(
        [Positioned(dead_letter("t", 0, i, None, b"x", "s", "e"), "dl", 0, i) for i in range(4)]
    )
    SinkWriter(chdb_client, _sink("deadletters", table), contract("DeadLetter"))
    key = chdb_client.query(
        "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": table},
    ).result_rows[0][0]
    assert key == "source_topic, partition, offset, stage, letter_id"
    assert _count(chdb_client, table) == 4


def test_a_one_column_key_is_not_rebuilt_at_every_start(chdb_client, unique_table, caplog):
    """ClickHouse reports a one-column sorting key in parentheses (``(prosumer_id)``); it was read as the column
    ``(prosumer_id)`` and every start rebuilt (copied) each such table, with a warning (seen in every platform log)."""
    table = unique_table("flex_enrolments")
    sink = _sink("flex_enrolments", table)
    assert len(sink.order_by) == 1
    SinkWriter(chdb_client, sink, contract("FlexEnrolment"))
    with caplog.at_level("WARNING", logger="edream.clickhouse"):
        SinkWriter(chdb_client, sink, contract("FlexEnrolment"))  # the next start
    assert not [r for r in caplog.records if "rebuilding" in r.getMessage()]
