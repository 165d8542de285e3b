"""Batched, idempotent writes of decoded topic records into the sink's ClickHouse table.

Engine-independent: a sink agent hands it batches of :class:`Positioned` records and gets back a
:class:`WriteResult` naming the rows that were not written and why (the agent dead-letters them).

* **Idempotency never depends on offsets** (they restart at 0 with a new broker): ClickHouse deduplicates an insert
  by the hash of its data, so a retried identical batch is a no-op while a batch with any new row is written, and
  ``ReplacingMergeTree`` on the sink's ``order_by`` (a record's deterministic id) collapses replays that batch
  differently (count with ``FINAL``).
* **A bad row never fails its batch:** rows are validated against their table's columns first
  (:mod:`edream.sink_validation`); if ClickHouse still refuses a batch for its data, the batch is bisected (at most
  ``max_split_inserts`` inserts) to find the refused rows, and only those are returned as rejected.
* **Transient failures** (ClickHouse unreachable, overloaded) raise :class:`ClickHouseTransient` after one attempt;
  :func:`write_retrying` retries with backoff while sleeping outside the ClickHouse thread, so other sinks sharing
  that thread keep writing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edream.avro_schemas import AvroContract
from edream.clickhouse import RowEncoder, ensure_table, insert_columns, is_data_error
from edream.retry import async_backoff
from edream.sink_validation import RowValidator
from edream.topology import Sink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Positioned:
    """A decoded record, where it came from, and (for dead letters) its original key and bytes."""

    record: dict[str, Any]
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    raw: bytes | None = None


@dataclass(frozen=True)
class RejectedRow:
    """A row the sink did not write. ``error_type``: ``SinkValidationError`` (refused before the insert) or
    ``ClickHouseRejected`` (refused by ClickHouse, isolated by bisection)."""

    item: Positioned
    error_type: str
    reason: str


@dataclass
class WriteResult:
    written: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    inserts: int = 0  # INSERT statements issued (1 unless ClickHouse refused data and the batch was bisected)


class ClickHouseTransient(ConnectionError):
    """An insert failed for a reason a later retry can cure; nothing of the batch is known to be bad."""


class SinkWriter:
    """Writes batches of one sink. ``max_split_inserts`` bounds the extra inserts spent isolating refused rows
    per batch; rows still in a refused part when it is spent are rejected together with that part's error."""

    def __init__(self, client: Any, sink: Sink, contract: AvroContract, max_split_inserts: int = 128):
        self.client, self.sink, self.contract = client, sink, contract
        self.encoder = RowEncoder(contract)
        self.validator = RowValidator(contract, sink.max_string_chars, sink.string_limits)
        self.max_split_inserts = max_split_inserts
        self.rows_written = 0
        ensure_table(client, sink, contract, rekey=True)

    def write(self, batch: Sequence[Positioned]) -> WriteResult:
        """Validate, insert, isolate refused rows. Raises :class:`ClickHouseTransient` (retry the same batch:
        the parts already inserted are deduplicated)."""
        result = WriteResult()
        if not batch:
            return result
        columns = self.encoder.columns_of([p.record for p in batch])
        invalid = self.validator.invalid_rows(columns)
        rows = list(range(len(batch)))
        if invalid:
            result.rejected += [
                RejectedRow(batch[i], "SinkValidationError", r) for i, r in sorted(invalid.items())
            ]
            rows = [i for i in rows if i not in invalid]
            columns = [[col[i] for i in rows] for col in columns]
        if rows:
            self._insert_isolating(batch, rows, columns, result)
        self.rows_written += result.written
        return result

    def _insert_isolating(
        self, batch: Sequence[Positioned], rows: list[int], columns: list[list[Any]], result: WriteResult
    ) -> None:
        pending = [(rows, columns)]
        splits_left = self.max_split_inserts
        while pending:
            part_rows, part_cols = pending.pop()
            try:
                result.inserts += 1
                insert_columns(self.client, self.sink.table, self.encoder.columns, part_cols)
                result.written += len(part_rows)
                continue
            except Exception as exc:
                if not is_data_error(exc):
                    raise ClickHouseTransient(f"{self.sink.table}: {type(exc).__name__}: {exc}") from exc
                error = f"ClickHouse refused the row: {type(exc).__name__}: {str(exc)[:500]}"
            if len(part_rows) == 1 or splits_left < 2:
                if len(part_rows) > 1:
                    error = f"not isolated (split budget spent), its part of {len(part_rows)} rows: {error}"
                    log.error("sink %s: %s", self.sink.name, error)
                result.rejected += [RejectedRow(batch[i], "ClickHouseRejected", error) for i in part_rows]
                continue
            splits_left -= 2
            half = len(part_rows) // 2
            pending.append((part_rows[half:], [c[half:] for c in part_cols]))
            pending.append((part_rows[:half], [c[:half] for c in part_cols]))


async def write_retrying(
    run: Callable[..., Awaitable[Any]],
    writer: SinkWriter,
    batch: Sequence[Positioned],
    on_retry: Callable[[BaseException], None] | None = None,
    first_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
) -> WriteResult:
    """``await run(writer.write, batch)`` until it does not raise :class:`ClickHouseTransient`.

    ``run`` executes the blocking write (e.g. on the ClickHouse thread); the exponential backoff (``first_backoff_s``
    doubling up to ``max_backoff_s``) is awaited outside it. Each retry is logged and reported to ``on_retry``. There is no
    retry limit: offsets must not be committed before the batch is written (at-least-once)."""

    async for attempt in async_backoff(
        f"sink {writer.sink.name}: ClickHouse write",
        retry_on=(ClickHouseTransient,),
        initial_s=first_backoff_s,
        max_s=max_backoff_s,
        jitter=False,
        on_retry=on_retry,
    ):
        with attempt:
            return await run(writer.write, batch)
    raise AssertionError("unreachable: a retry without stop either returns or re-raises")
