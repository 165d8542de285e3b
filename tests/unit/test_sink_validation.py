"""Per-row validation of sink batches against their ClickHouse columns (edream/sink_validation.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from pathlib import Path

import pytest

from edream.avro_samples import sample_value
from edream.avro_schemas import all_contracts, contract
from edream.clickhouse import RowEncoder
from edream.paths import TOPOLOGY_FILE
from edream.sink_validation import DATETIME64_END_MS, DATETIME64_MIN_MS, RowValidator, value_check
from edream.sink_writer import ClickHouseTransient, Positioned, WriteResult, write_retrying
from edream.topology import load_topology
from streams.deadletter import MAX_ERROR_CHARS, dead_letter, sink_letter


def _invalid(name: str, records: list[dict], **limits) -> dict[int, str]:
    c = contract(name)
    return RowValidator(c, **limits).invalid_rows(RowEncoder(c).columns_of(records))


@pytest.mark.parametrize("name", sorted(all_contracts()))
def test_sample_records_of_every_contract_are_valid(name):
    records = [sample_value(contract(name).raw, seed=s) for s in range(3)]
    assert _invalid(name, records, max_string_chars=10_000) == {}


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("ts", DATETIME64_END_MS, "outside ClickHouse's range 1900-01-01 .. 2299-12-31"),
        ("ts", DATETIME64_MIN_MS - 1, "outside ClickHouse's range"),
        ("ts", "2026-01-01", "expected epoch ms (integer), got str"),
        ("value", math.nan, "not a finite number: nan"),
        ("value", -math.inf, "not a finite number: -inf"),
        ("value", "12", "expected a number, got str"),
        ("value", True, "expected a number, got bool"),
        ("seq", 2**63, "outside [-9223372036854775808, 9223372036854775807]"),
        ("seq", 1.5, "expected an integer, got float"),
        ("device_id", "d" * 4097, "4097 characters, more than the limit of 4096"),
        ("device_id", None, "null in a column that is not Nullable"),
        ("quantity", "FURLONGS", "'FURLONGS' is not one of the enum symbols"),
    ],
)
def test_each_bad_value_names_its_column_and_reason(field, value, reason):
    good = sample_value(contract("Measurement").raw)
    bad = _invalid("Measurement", [good, {**good, field: value}, good])
    assert list(bad) == [1]
    assert bad[1].startswith(f"column `{field}`: ") and reason in bad[1]


@pytest.mark.parametrize(
    ("avro_type", "values"),
    [
        ("double", [1.0, 2, -3.5]),
        ("double", [1e308, 1e308]),  # the sum overflows: the fast path declines, the scan finds nothing
        ("double", [1.0, math.nan]),
        ("double", [math.inf, -math.inf]),
        ("float", [1.0, 1e39]),
        ("double", [1.0, 10**400]),
        ("long", [1, 2**63]),
        ("long", [1, True]),
        (["null", "long"], [None, 3]),
        ("string", ["a", b"b"]),
    ],
)
def test_the_whole_column_fast_path_never_passes_a_bad_value(avro_type, values):
    check = value_check(avro_type)
    each_ok = all(check.problem(v) is None for v in values)
    if check.all_ok(values):
        assert each_ok
    assert each_ok == (avro_type in ("double", ["null", "long"]) and values[-1] in (-3.5, 1e308, 3))


def test_nullable_arrays_dates_and_limits():
    ts_array = {"type": "array", "items": {"type": "long", "logicalType": "timestamp-millis"}}
    assert value_check(ts_array).problem([0, DATETIME64_END_MS]).startswith("element 1: ")
    assert value_check(["null", "string"]).problem(None) is None
    assert value_check({"type": "int", "logicalType": "date"}).problem(120_530) is not None
    aware = dt.datetime(2300, 1, 1, tzinfo=dt.UTC)
    assert value_check({"type": "long", "logicalType": "timestamp-millis"}).problem(aware) is not None
    assert value_check("string", max_chars=5).problem("abcdef") is not None
    assert value_check("bytes").problem(b"x" * 100_000) is None  # payloads are bounded by the blob limit


def test_string_limits_override_per_column():
    good = sample_value(contract("Measurement").raw)
    rec = {**good, "obis_code": "o" * 5000}
    assert _invalid("Measurement", [rec]) != {}
    assert _invalid("Measurement", [rec], string_limits={"obis_code": 6000}) == {}


def test_dead_letter_id_is_deterministic_and_tells_stages_payloads_and_reasons_apart():
    a = dead_letter("t", 0, 5, b"k", b"p1", "sink:m", "bad", failed_at=1)
    assert dead_letter("t", 0, 5, b"k", b"p1", "sink:m", "bad", failed_at=2)["letter_id"] == a["letter_id"]
    others = [
        dead_letter("t", 0, 5, b"k", b"p1", "intervals", "bad"),
        dead_letter("t", 0, 5, b"k", b"p2", "sink:m", "bad"),
        dead_letter("t", 0, 5, b"k", b"p1", "sink:m", "worse"),
        dead_letter("t", 1, 5, b"k", b"p1", "sink:m", "bad"),
    ]
    assert len({a["letter_id"], *(o["letter_id"] for o in others)}) == 5
    assert len(dead_letter("t", 0, 5, None, None, "s", "x" * 10_000)["error"]) == MAX_ERROR_CHARS


class _FlakyWriter:
    """Stands in for SinkWriter in a pure test of the retry loop: fails ``failures`` times, then writes."""

    def __init__(self, failures: int):
        self.failures, self.calls = failures, 0
        self.sink = type("S", (), {"name": "m"})()

    def write(self, batch):
        self.calls += 1
        if self.calls <= self.failures:
            raise ClickHouseTransient("connection refused")
        return WriteResult(written=len(batch))


def test_write_retrying_retries_transient_failures_outside_the_writer_and_reports_them():
    writer = _FlakyWriter(failures=3)
    retries: list[BaseException] = []

    async def run(fn, *args):
        return fn(*args)

    result = asyncio.run(
        write_retrying(
            run, writer, [1, 2], on_retry=retries.append, first_backoff_s=0.001, max_backoff_s=0.01
        )
    )
    assert result.written == 2 and writer.calls == 4 and len(retries) == 3


def test_write_retrying_does_not_retry_other_errors():
    class Broken(_FlakyWriter):
        def write(self, batch):
            self.calls += 1
            raise RuntimeError("bug")

    writer = Broken(0)

    async def run(fn, *args):
        return fn(*args)

    with pytest.raises(RuntimeError):
        asyncio.run(write_retrying(run, writer, [1], first_backoff_s=0.001))
    assert writer.calls == 1


def test_sink_letter_keeps_the_original_and_never_loops_on_its_own_letters():
    item = Positioned({"device_id": "d"}, "readings", 2, 9, b"k", b"raw")
    dl = sink_letter(item, "sink:measurements", "bad ts", "SinkValidationError", "dlq")
    assert (dl["original"], dl["key"], dl["stage"], dl["error_type"]) == (
        b"raw",
        b"k",
        "sink:measurements",
        "SinkValidationError",
    )
    own = Positioned(dl, "dlq", 0, 1, b"readings", b"letter-bytes")
    assert sink_letter(own, "sink:measurements", "too long", "SinkValidationError", "dlq") is None
    other_stage = Positioned({**dl, "stage": "intervals"}, "dlq", 0, 2, None, b"x")
    assert sink_letter(other_stage, "sink:measurements", "too long", None, "dlq")["original"] == b"x"
    undecodable = Positioned({}, "dlq", 0, 3, None, b"garbage")
    assert sink_letter(undecodable, "sink:deadletters", "unknown framing", None, "dlq") is not None


def test_every_sink_is_keyed_on_non_nullable_fields():
    """A dedup key must identify a record: NULL key columns cannot."""
    topo = load_topology(TOPOLOGY_FILE)
    for s in topo.sinks:
        fields = {
            f["name"]: f["type"] for f in contract(Path(topo.topic(s.topic).value_schema).stem).raw["fields"]
        }
        for col in s.order_by:
            assert not (isinstance(fields[col], list) and "null" in fields[col]), (s.name, col)
