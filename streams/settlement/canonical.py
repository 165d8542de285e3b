"""Canonical byte encoding of a record: the exact bytes that are hashed into Merkle leaves.

Rule: JSON with keys sorted (recursively), no insignificant whitespace (``,`` and ``:`` separators), non-ASCII
characters kept as UTF-8 (not ``\\u`` escapes), encoded as UTF-8. Integers only: floats are refused because
their decimal text is not portable across languages (money is integer micro-units, energy integer Wh, times
integer UTC epoch ms). Any other language can reproduce these bytes with a standard JSON library.
"""

from __future__ import annotations

import json
from typing import Any


class NotCanonical(TypeError):
    """The record holds a value with no canonical encoding (float, bytes, object...)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise NotCanonical(f"{path}: float {value!r} has no canonical encoding; use integer units")
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise NotCanonical(f"{path}: key {k!r} is not a string")
            _check(v, f"{path}.{k}")
        return
    raise NotCanonical(f"{path}: {type(value).__name__} has no canonical encoding")


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """Sorted-key compact JSON, UTF-8. Raises :class:`NotCanonical` for floats and non-JSON values."""
    _check(record, "$")
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
