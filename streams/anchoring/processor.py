"""The anchoring stage's processor: settlements in, one anchor per (kind, window) on wall-clock ticks.

* **Records** (``settlement.flex.v1`` / ``settlement.market.v1``, re-keyed to ``<kind>:<window_id>``, so a window's
  records meet in one partition): decoded, validated (:func:`streams.validation.settlement.check_settlement`,
  before anything is scheduled), added to the window's state (:class:`~.window_state.WindowState`: de-duplicated
  per settlement id, latest version wins). A record for a window that was already anchored is absorbed if it is the
  record that was anchored, else it becomes a ``LATE_FOR_ANCHOR`` rejection (a root on-chain never changes).
* **Ticks** ("the wall clock is at least ``now_ms``"): every window whose end + grace has passed is anchored
  through :class:`~.anchorer.Anchorer` (reads the chain first, so a window anchored before a crash is found and
  its receipt rebuilt, never sent twice), and after N confirmations the stage emits the ``AnchorReceipt`` and the
  window's manifest (one ``AnchorLeaf`` per record, for ``chain_anchor_leaves``). Anchoring is blocking (web3); a
  tick stops starting new windows after ``tick_budget_s`` so one partition never holds the worker for long; the
  rest stay due for the next tick.
* **Outages**: an unreachable or slow chain raises :class:`~edream.runtime.contract.TransientError` (the runtime
  retries from the last checkpoint with backoff, and the health shows it); so does an unauthorised key
  (``NotWriter``: an operator must authorise it, no record can pass). A root conflict or another contract refusal
  closes the window with ``ANCHOR_CONFLICT`` / ``ANCHOR_REFUSED`` rejections for its records.

All outputs are deterministic (receipt id from chain, contract and window; rejection ids from the settlement), so
a replay after a crash repeats them and the sinks collapse the duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from edream.runtime.contract import Emit, KeyValueState, Record, TransientError
from edream.serde import Serde
from streams.anchoring.anchorer import AnchorConflict, Anchorer, AnchorRejected
from streams.anchoring.merkle import leaf_hash
from streams.anchoring.rejections import ANCHOR_CONFLICT, ANCHOR_REFUSED, LATE_FOR_ANCHOR, rejection
from streams.anchoring.window_state import (
    PURGE,
    AddOutcome,
    DueEntry,
    WindowHeader,
    WindowState,
    WindowStatus,
    window_state_key,
)
from streams.anchoring.windows import WindowBatch, WindowKey
from streams.validation.fields import InvalidRecord
from streams.validation.limits import Limits
from streams.validation.settlement import check_settlement

#: contract refusals no window can pass (configuration, not data): retried as an outage until fixed
FATAL_REFUSALS = frozenset({"NotWriter"})


@dataclass(frozen=True)
class AnchoringTopics:
    """Output topics (the loaded topology's names)."""

    receipts: str
    leaves: str
    rejections: str


@dataclass(frozen=True)
class WindowTiming:
    """Anchor window length, grace after its end before anchoring, and how long a closed window is remembered
    (to absorb re-deliveries and reject late records); all in ms. Keep ``retain_ms`` at least the validation's
    ``max_past_ms``: older settlements are refused by validation, so nothing can reach a purged window."""

    period_ms: int
    grace_ms: int
    retain_ms: int

    def key_for(self, kind: str, window_start_ms: int) -> WindowKey:
        return WindowKey.containing(kind, window_start_ms, self.period_ms)


def window_of(serde: Serde, timing: WindowTiming) -> Callable[[bytes | None, bytes], list[bytes]]:
    """Re-key function of the settlement inputs: value -> ``[b"<kind>:<window_id>"]`` (raises on bad bytes; the
    runtime then lets the stage dead-letter the record)."""

    def rekey(_key: bytes | None, value: bytes) -> list[bytes]:
        _, rec = serde.decode(value)
        return [window_state_key(timing.key_for(str(rec["kind"]), int(rec["window_start"]))).encode()]

    return rekey


class AnchoringProcessor:
    """``anchorer`` is called (lazily, once) to connect to the chain; a failure there is an outage too."""

    def __init__(
        self,
        serde: Serde,
        topics: AnchoringTopics,
        timing: WindowTiming,
        anchorer: Callable[[], Anchorer],
        limits: Limits,
        wall_clock: Callable[[], int] = lambda: int(time.time() * 1000),
        tick_budget_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.serde, self.topics, self.timing, self.limits = serde, topics, timing, limits
        self._connect = anchorer
        self._anchorer: Anchorer | None = None
        self.wall_clock, self.tick_budget_s, self.monotonic = wall_clock, tick_budget_s, monotonic

    # -- records --------------------------------------------------------------------------------------------
    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        _, rec = self.serde.decode(record.value, record.topic)
        errors = check_settlement(rec, self.wall_clock(), self.limits)
        if errors:
            raise InvalidRecord("Settlement", errors)
        key = self.timing.key_for(str(rec["kind"]), int(rec["window_start"]))
        outcome = WindowState(state).add(key, rec, anchor_at_ms=key.end_ms + self.timing.grace_ms)
        if outcome is AddOutcome.LATE:
            reason = f"settlement arrived after its anchor window {key.kind} {key.window_id} was closed"
            return [self._rejection(rec, LATE_FOR_ANCHOR, reason)]
        return []

    # -- ticks ----------------------------------------------------------------------------------------------
    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        windows = WindowState(state)
        started, closed, out = self.monotonic(), 0, []
        for entry in windows.due.due(now_ms):
            if entry.action == PURGE:
                windows.purge(entry)
            elif not closed or self.monotonic() - started < self.tick_budget_s:
                out += self._close(windows, entry)
                closed += 1
        return out

    def _close(self, windows: WindowState, entry: DueEntry) -> list[Emit]:
        header = windows.header(entry.wkey)
        if header is None or header.status is not WindowStatus.OPEN:  # cannot happen; heal the index
            windows.due.remove(entry)
            return []
        records = windows.records(entry.wkey, header)
        batch = WindowBatch(header.key, {r["settlement_id"]: r for r in records})
        try:
            receipt = self.anchorer.anchor_window(batch)
        except AnchorConflict as exc:
            status, out = (
                WindowStatus.CONFLICT,
                [self._rejection(r, ANCHOR_CONFLICT, str(exc)) for r in records],
            )
        except AnchorRejected as exc:
            if exc.reason in FATAL_REFUSALS:
                raise TransientError(f"AnchorRegistry refuses this key: {exc}") from exc
            status, out = (
                WindowStatus.REFUSED,
                [self._rejection(r, ANCHOR_REFUSED, str(exc)) for r in records],
            )
        except Exception as exc:  # noqa: BLE001 - node unreachable, timeout, no confirmations yet
            raise TransientError(f"anchoring {entry.wkey}: {type(exc).__name__}: {exc}") from exc
        else:
            status, out = WindowStatus.ANCHORED, self._anchored(header, receipt, batch)
        windows.close(entry, header, records, status, purge_at=header.end_ms + self.timing.retain_ms)
        return out

    @property
    def anchorer(self) -> Anchorer:
        if self._anchorer is None:
            try:
                self._anchorer = self._connect()
            except Exception as exc:  # noqa: BLE001 - no chain yet: the runtime retries with backoff
                raise TransientError(f"chain not reachable: {type(exc).__name__}: {exc}") from exc
        return self._anchorer

    # -- outputs --------------------------------------------------------------------------------------------
    def _anchored(self, header: WindowHeader, receipt: dict, batch: WindowBatch) -> list[Emit]:
        wkey = window_state_key(header.key).encode()
        t = self.topics
        out = [Emit(t.receipts, wkey, self.serde.encode("AnchorReceipt", receipt, t.receipts))]
        for r in batch.records:
            leaf = {
                "kind": header.kind,
                "window_id": header.key.window_id,
                "settlement_id": r["settlement_id"],
                "leaf": "0x" + leaf_hash(r).hex(),
            }
            out.append(Emit(t.leaves, wkey, self.serde.encode("AnchorLeaf", leaf, t.leaves)))
        return out

    def _rejection(self, rec: dict, code: str, reason: str) -> Emit:
        t = self.topics.rejections
        body = self.serde.encode("Rejection", rejection(rec, code, reason), t)
        return Emit(t, str(rec["settlement_id"]).encode(), body)
