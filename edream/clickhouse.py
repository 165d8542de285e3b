"""ClickHouse access through clickhouse-connect: a server over HTTP in production, chDB on disk when embedded.

Tables are derived from the Avro contract of the topic they store (see :func:`table_ddl`) and are
``ReplacingMergeTree`` keyed by the sink's ``order_by``, so replays never duplicate rows (count with FINAL).
Sink inserts (:func:`insert_columns`) rely on ClickHouse's insert deduplication by the hash of the inserted data
(``non_replicated_deduplication_window``): a retried identical batch is a no-op, a batch with any different row is
written. :func:`insert_rows` (other writers) takes an explicit deterministic token and retries with backoff.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.exceptions import DatabaseError, DataError

from edream.avro_schemas import AvroContract
from edream.retry import backoff
from edream.settings import Settings
from edream.topology import Sink

log = logging.getLogger(__name__)

_PRIMITIVES = {
    "string": "String",
    "bytes": "String",
    "long": "Int64",
    "int": "Int32",
    "double": "Float64",
    "float": "Float32",
    "boolean": "Bool",
}
_LOGICAL = {
    "timestamp-millis": "DateTime64(3, 'UTC')",
    "timestamp-micros": "DateTime64(6, 'UTC')",
    "date": "Date32",
}


class ClickHouseUnavailable(ConnectionError):
    """ClickHouse could not be reached or refused the statement after all retries."""


def get_client(settings: Settings, dsn: str | None = None) -> Any:
    """clickhouse-connect client for ``CLICKHOUSE_DSN`` (or the embedded chDB path)."""
    dsn = dsn or settings.effective_clickhouse_dsn
    if dsn.startswith("chdb://"):
        settings.chdb_path.mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)


def is_complex(avro_type: Any) -> bool:
    """Records and arrays/maps of records are stored as canonical JSON strings."""
    if isinstance(avro_type, dict):
        t = avro_type["type"]
        if t == "record" or t == "map":
            return True
        if t == "array":
            return isinstance(avro_type["items"], dict) and avro_type["items"].get("type") in (
                "record",
                "array",
            )
    return False


def column_type(avro_type: Any) -> str:
    """ClickHouse column type for an Avro field type."""
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if len(non_null) != 1:
            return "String"  # general unions are stored as JSON
        inner = column_type(non_null[0])
        if inner.startswith("LowCardinality("):
            return f"LowCardinality(Nullable({inner[len('LowCardinality(') : -1]}))"
        return inner if "null" not in avro_type else f"Nullable({inner})"
    if isinstance(avro_type, str):
        return _PRIMITIVES.get(avro_type, "String")
    if is_complex(avro_type):
        return "String"
    if avro_type.get("logicalType") in _LOGICAL:
        return _LOGICAL[avro_type["logicalType"]]
    t = avro_type["type"]
    if t == "enum":
        return "LowCardinality(String)"
    if t == "array":
        return f"Array({column_type(avro_type['items'])})"
    if t == "fixed":
        return "String"
    return column_type(t)


def table_ddl(sink: Sink, contract: AvroContract, database: str | None = None) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for a sink, columns in Avro field order, docs as column comments."""
    cols = []
    for f in contract.raw["fields"]:
        comment = (f.get("doc") or "").replace("'", "''")
        cols.append(
            f"  `{f['name']}` {column_type(f['type'])}" + (f" COMMENT '{comment}'" if comment else "")
        )
    name = f"{database}.{sink.table}" if database else sink.table
    engine = f"ReplacingMergeTree({sink.version})" if sink.version else "ReplacingMergeTree"
    parts = [f"CREATE TABLE IF NOT EXISTS {name} (\n" + ",\n".join(cols) + "\n)", f"ENGINE = {engine}"]
    if sink.partition_by:
        parts.append(f"PARTITION BY {sink.partition_by}")
    parts.append(f"ORDER BY ({', '.join(sink.order_by)})")
    if sink.ttl:
        parts.append(f"TTL {sink.ttl}")
    parts.append("SETTINGS non_replicated_deduplication_window = 10000")
    return "\n".join(parts)


class RowEncoder:
    """Turns decoded Avro records into ClickHouse row lists in column order."""

    def __init__(self, contract: AvroContract):
        self.columns = [f["name"] for f in contract.raw["fields"]]
        self._json_cols = {i for i, f in enumerate(contract.raw["fields"]) if stored_as_json(f["type"])}

    def row(self, record: dict[str, Any]) -> list[Any]:
        out = [record.get(c) for c in self.columns]
        for i in self._json_cols:
            out[i] = _as_json(out[i])
        return out

    def columns_of(self, records: Sequence[dict[str, Any]]) -> list[list[Any]]:
        """Column-oriented form of a batch (what ClickHouse stores; much cheaper than row tuples)."""
        cols = [[r.get(c) for r in records] for c in self.columns]
        for i in self._json_cols:
            cols[i] = [_as_json(v) for v in cols[i]]
        return cols


def _as_json(value: Any) -> Any:
    if value is None or isinstance(value, str | bytes):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def stored_as_json(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        return len(non_null) != 1 or stored_as_json(non_null[0])
    return is_complex(avro_type)


def added_columns_ddl(sink: Sink, contract: AvroContract, existing: set[str]) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for contract fields a table created from an older contract version lacks
    (contracts only evolve backward compatibly: an added field has an Avro default; old rows read NULL or the
    column type's default)."""
    out = []
    for f in contract.raw["fields"]:
        if f["name"] not in existing:
            comment = (f.get("doc") or "").replace("'", "''")
            out.append(
                f"ALTER TABLE {sink.table} ADD COLUMN IF NOT EXISTS `{f['name']}` {column_type(f['type'])}"
                + (f" COMMENT '{comment}'" if comment else "")
            )
    return out


def ensure_table(client: Any, sink: Sink, contract: AvroContract, rekey: bool = False) -> None:
    """Create the sink's table if missing, and add the columns of fields added to its contract since.

    With ``rekey`` (the table's owner, the topology sink), a table whose sorting key (the dedup key) differs from the
    sink's ``order_by`` is rebuilt with the new key (:func:`rebuild_with_sorting_key`), so a corrected key also
    applies to data dirs made before the change."""
    _with_retry(client.command, table_ddl(sink, contract))
    existing = {
        r[0]
        for r in _with_retry(
            client.query,
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
            parameters={"t": sink.table},
        ).result_rows
    }
    for ddl in added_columns_ddl(sink, contract, existing):
        _with_retry(client.command, ddl)
    if not rekey:
        return
    current = _with_retry(
        client.query,
        "SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": sink.table},
    ).result_rows[0][0]
    if _key_columns(current) != [c.strip("`") for c in sink.order_by]:
        rebuild_with_sorting_key(client, sink, contract, current)


def _key_columns(sorting_key: str) -> list[str]:
    """The columns of ``system.tables.sorting_key``: ``a, b`` for several, ``(a)`` for one (ClickHouse keeps the
    parentheses of ``ORDER BY (a)`` then)."""
    key = sorting_key.strip()
    if key.startswith("(") and key.endswith(")"):
        key = key[1:-1]
    return [c.strip().strip("`") for c in key.split(",") if c.strip()]


def rebuild_with_sorting_key(client: Any, sink: Sink, contract: AvroContract, old_key: str) -> None:
    """Copy the sink's table into a new one ordered by ``sink.order_by`` and swap them (ClickHouse cannot change a
    sorting key in place). Rows of the old table that the new key tells apart are kept apart from then on."""
    tmp = sink.model_copy(update={"table": f"{sink.table}__rekey"})
    log.warning(
        "table %s: sorting key (%s) -> (%s); rebuilding", sink.table, old_key, ", ".join(sink.order_by)
    )
    cols = ", ".join(f"`{f['name']}`" for f in contract.raw["fields"])
    _with_retry(client.command, f"DROP TABLE IF EXISTS {tmp.table}")
    _with_retry(client.command, table_ddl(tmp, contract))
    _with_retry(client.command, f"INSERT INTO {tmp.table} ({cols}) SELECT {cols} FROM {sink.table}")
    _with_retry(client.command, f"EXCHANGE TABLES {sink.table} AND {tmp.table}")
    _with_retry(client.command, f"DROP TABLE {tmp.table}")


def insert_rows(
    client: Any,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    dedup_token: str | None = None,
    max_wait_s: float = 300.0,
    column_oriented: bool = False,
) -> None:
    """Insert one batch (rows, or columns when ``column_oriented``), retried with exponential backoff for up to
    ``max_wait_s``; the dedup token makes a retried (or replayed) identical batch a no-op."""
    settings = {"insert_deduplicate": 1}
    if dedup_token:
        settings["insert_deduplication_token"] = dedup_token
    _with_retry(
        client.insert,
        table,
        rows,
        column_names=list(columns),
        settings=settings,
        column_oriented=column_oriented,
        max_wait_s=max_wait_s,
    )


#: Server error codes that are about the inserted values (parse, type, range, size): retrying cannot help, the
#: offending row has to be isolated. Any other server error, and any connection error, is treated as transient.
_DATA_ERROR_CODES = {
    6,  # CANNOT_PARSE_TEXT
    26,  # CANNOT_PARSE_QUOTED_STRING
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  # CANNOT_PARSE_DATE
    41,  # CANNOT_PARSE_DATETIME
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    128,  # TOO_LARGE_ARRAY_SIZE
    131,  # TOO_LARGE_STRING_SIZE
    190,  # SIZES_OF_ARRAYS_DONT_MATCH
    321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407,  # DECIMAL_OVERFLOW
}
_TOO_MANY_PARTITIONS = re.compile(r"Too many partitions for single INSERT block")


def is_data_error(exc: BaseException) -> bool:
    """True if an insert failed because of the values in it (splitting the batch isolates the culprit), False if
    it failed for a reason a retry can cure (connection, server overload, missing table...).

    Client-side serialisation errors (a value clickhouse-connect cannot encode for its column) and server codes in
    ``_DATA_ERROR_CODES`` are data errors; so is "too many partitions for single INSERT block" (event times spread
    over more months than one insert may touch: smaller batches pass)."""
    if isinstance(exc, DataError | ValueError | TypeError | AttributeError | OverflowError | struct.error):
        return True
    if isinstance(exc, DatabaseError):
        code = getattr(exc, "code", None)
        return code in _DATA_ERROR_CODES or bool(_TOO_MANY_PARTITIONS.search(str(exc)))
    return False


def insert_columns(client: Any, table: str, columns: Sequence[str], data: Sequence[Sequence[Any]]) -> None:
    """One attempt to insert a column-oriented batch, deduplicated by ClickHouse on the hash of its data (the
    table's ``non_replicated_deduplication_window``): re-inserting identical rows is a no-op. Raises as is;
    the caller decides with :func:`is_data_error` whether to split the batch or retry later."""
    client.insert(
        table, data, column_names=list(columns), settings={"insert_deduplicate": 1}, column_oriented=True
    )


def _with_retry(fn: Any, *args: Any, max_wait_s: float = 300.0, **kwargs: Any) -> Any:
    try:
        return backoff("ClickHouse call", initial_s=0.2, max_s=10.0, give_up_after_s=max_wait_s)(
            fn, *args, **kwargs
        )
    except Exception as exc:
        raise ClickHouseUnavailable(f"ClickHouse call failed after retries: {exc}") from exc
