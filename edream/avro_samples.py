"""Deterministic sample records for any Avro schema (tests, compatibility checks and benchmarks)."""

from __future__ import annotations

from typing import Any


def sample_value(schema: Any, named: dict[str, Any] | None = None, seed: int = 0) -> Any:
    """A valid value for ``schema``: every field filled, arrays with two items, the first enum symbol."""
    named = {} if named is None else named
    if isinstance(schema, str):
        if schema in named:
            return sample_value(named[schema], named, seed)
        return {
            "null": None,
            "boolean": bool(seed % 2),
            "int": 7 + seed,
            "long": 1_700_000_000_000 + seed,
            "float": 1.5,
            "double": 2.25 + seed,
            "string": f"s{seed}",
            "bytes": b"\x00\x01",
        }[schema]
    if isinstance(schema, list):
        non_null = [s for s in schema if s != "null"]
        return sample_value(non_null[0], named, seed) if non_null else None
    t = schema["type"]
    if t == "record":
        named[schema["name"]] = schema
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = schema
        return {f["name"]: sample_value(f["type"], named, seed + i) for i, f in enumerate(schema["fields"])}
    if t == "enum":
        named[schema["name"]] = schema
        return schema["symbols"][seed % len(schema["symbols"])]
    if t == "array":
        return [sample_value(schema["items"], named, seed + k) for k in range(2)]
    if t == "map":
        return {"k": sample_value(schema["values"], named, seed)}
    if t == "fixed":
        named[schema["name"]] = schema
        return b"\x00" * schema["size"]
    return sample_value(t, named, seed)
