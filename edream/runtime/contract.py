"""What a stage is, independent of the stream engine: typed records in, partition-local state, emits out.

A processor sees one input record at a time (:meth:`StageProcessor.on_record`) or a wall-clock tick of one
partition (:meth:`StageProcessor.on_tick`), together with that partition's :class:`KeyValueState`. Everything it
needs to remember lives in that state under keys of its choosing (per meter, per prosumer, per order...), read and
written incrementally: the runtime persists each write (RocksDB + changelog topic) and applies a record's writes
only if the record was processed without raising, so a poison record leaves no half-written state behind.

Errors: raise :class:`TransientError` for an outage (broker, ClickHouse, chain, timeout): the record is retried
with backoff until it succeeds. Any other exception dead-letters the record with the stage and the reason (its
``error_type`` is the exception's ``error_type`` attribute when it has one, else its class name), and processing
continues with the next record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


class Emit(NamedTuple):
    """An output message: topic (the loaded topology's name), key and value bytes."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Record:
    """An input message. ``timestamp_ms``: the Kafka record timestamp (UTC epoch ms); event time, when the
    contract carries one, is in the decoded value and must be validated before it moves any clock."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


class KeyValueState(Protocol):
    """The state of one partition of one stage: bytes values under string keys."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


class StageProcessor(Protocol):
    def on_record(self, record: Record, state: KeyValueState) -> Iterable[Emit]:
        """Handle one input record; return what to publish."""
        ...

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> Iterable[Emit]:
        """Wall-clock work for one partition (``now_ms``: UTC epoch ms when the tick was sent)."""
        ...


class TransientError(RuntimeError):
    """A dependency is unavailable; the record is retried with backoff, never dead-lettered."""


#: re-key function of a repartitioned input: (message key, value) -> the state keys the record belongs to (none: the
#: stage ignores the record; several: one copy per key, e.g. a flex order to each of its prosumers). A function may
#: route by the message key alone, without decoding the value, when the stage checks that key against the record
#: (a record under a wrong key is then dead-lettered there). If it raises, the record is dead-lettered by the stage
#: with the reason.
Rekey = Callable[[bytes | None, bytes], Iterable[bytes]]


class View(Protocol):
    """Latest value per key of a compacted registry topic, read whole by every worker (see GlobalView)."""

    def get(self, key: bytes) -> bytes | None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class StageSpec:
    """A stage as the runtime sees it.

    ``inputs``: topic names (all with the same partition count: state is co-partitioned by key);
    ``rekey``: per input topic, a function giving the state key when the topic is keyed otherwise (the record goes
    through a repartition topic first); ``tick_ms``: period of wall-clock ticks per partition (None: no ticks);
    ``views``: compacted registry topics every worker reads whole before it processes anything (small, slowly
    changing reference data such as enrolments); ``make``: builds the processor from those views (once per
    process, before the first record); ``ticks_wait_for_inputs_ms``: hold ticks until the stage has processed
    everything that was on its inputs (:mod:`edream.runtime.input_frontier`), for at most this long (None: ticks
    pass at once); for stages that close something for good on the wall clock.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    make: Callable[[dict[str, View]], StageProcessor]
    rekey: dict[str, Rekey] = field(default_factory=dict)
    views: tuple[str, ...] = ()
    tick_ms: int | None = None
    ticks_wait_for_inputs_ms: int | None = None
    description: str = ""
