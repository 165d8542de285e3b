"""Defensive ClickHouse reads for panels: a missing table is an empty result with a note, not an error."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class MissingTable(LookupError):
    """The table a panel reads does not exist (yet): that area is not running or not sunk."""


def existing_tables(client: Any) -> set[str]:
    """Names of the tables in the current database."""
    return {
        r[0]
        for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows
    }


def rows(client: Any, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run ``sql`` and return dicts; DateTime values become UTC epoch ms (what the browser plots)."""
    res = client.query(sql, parameters=params or {})
    return [{k: _jsonable(v) for k, v in zip(res.column_names, row, strict=True)} for row in res.result_rows]


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return int(v.timestamp() * 1000)
    if isinstance(v, bytes):
        return v.hex()
    return v


def require(client: Any, *tables: str) -> list[str]:
    """The subset of ``tables`` that is missing (empty list = all present)."""
    have = existing_tables(client)
    return [t for t in tables if t not in have]


def missing_note(missing: list[str]) -> dict[str, Any]:
    """The panel body for absent tables."""
    return {"empty": True, "note": f"no data yet: table(s) {', '.join(missing)} do not exist in ClickHouse"}
