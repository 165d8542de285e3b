"""Snapshot bytes of processor state (pickled, written atomically by :class:`~streams.stateful_loop.StatefulLoop`)."""

from __future__ import annotations

import pickle
from typing import Any, TypeVar

T = TypeVar("T")


def dump(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def load(blob: bytes, cls: type[T]) -> T:
    """Unpickle ``blob`` and check it holds a ``cls`` (a state file of another service is refused)."""
    obj = pickle.loads(blob)
    if not isinstance(obj, cls):
        raise TypeError(f"not a {cls.__name__} snapshot")
    return obj
