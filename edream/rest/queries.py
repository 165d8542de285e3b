"""ClickHouse queries of the REST read resources: rows of one sink table (``FINAL``: replays and restarts never
show a row twice), filtered by identifier columns and an event-time range, newest first; rows come back in their
Avro contract's shape (timestamps as UTC epoch ms, JSON-stored columns parsed)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edream.clickhouse import stored_as_json
from edream.rest.resources import BoundRead

MAX_LIMIT = 10_000


@dataclass(frozen=True)
class ReadQuery:
    """``equals``: column -> value (identifier filters); ``since_ms``/``until_ms``: the time column's half-open
    range [since, until) in UTC epoch ms; ``limit``: newest rows returned (1..:data:`MAX_LIMIT`)."""

    equals: dict[str, str]
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100


def select_sql(bound: BoundRead, q: ReadQuery) -> tuple[str, dict[str, Any]]:
    """The SQL and its bound parameters (values never enter the SQL text)."""
    columns = ", ".join(f"`{f['name']}`" for f in bound.fields)
    where, params = [], {}
    for i, (column, value) in enumerate(sorted(q.equals.items())):
        if column not in bound.filters:
            raise ValueError(f"{column} is not a filter of {bound.resource.path}")
        where.append(f"`{column}` = {{f{i}:String}}")
        params[f"f{i}"] = value
    t = bound.resource.time_column
    if q.since_ms is not None:
        where.append(f"`{t}` >= fromUnixTimestamp64Milli({{since:Int64}})")
        params["since"] = q.since_ms
    if q.until_ms is not None:
        where.append(f"`{t}` < fromUnixTimestamp64Milli({{until:Int64}})")
        params["until"] = q.until_ms
    sql = f"SELECT {columns} FROM `{bound.table}` FINAL"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY `{t}` DESC LIMIT {max(1, min(q.limit, MAX_LIMIT))}"
    return sql, params


def _epoch_ms(value: Any) -> Any:
    if isinstance(value, datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, list):
        return [_epoch_ms(v) for v in value]
    return value


def _is_timestamp(avro_type: Any) -> bool:
    if isinstance(avro_type, list):
        return any(_is_timestamp(t) for t in avro_type if t != "null")
    if isinstance(avro_type, dict):
        if avro_type.get("type") == "array":
            return _is_timestamp(avro_type["items"])
        return avro_type.get("logicalType") in ("timestamp-millis", "timestamp-micros")
    return False


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such values are shown as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


class RowShaper:
    """ClickHouse rows of a read resource -> records shaped like its Avro contract."""

    def __init__(self, bound: BoundRead):
        self.names = [f["name"] for f in bound.fields]
        self._json = {i for i, f in enumerate(bound.fields) if stored_as_json(f["type"])}
        self._time = {i for i, f in enumerate(bound.fields) if _is_timestamp(f["type"])}

    def record(self, row: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
        out = list(row)
        for i in self._time:
            out[i] = _epoch_ms(out[i])
        for i in self._json:
            if isinstance(out[i], str):
                out[i] = json.loads(out[i])
        return {n: _finite(v) for n, v in zip(self.names, out, strict=True)}
