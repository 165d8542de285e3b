"""Anchor windows kept in a partition's key/value state, read and written incrementally (engine-independent).

The anchoring stage re-keys every settlement to its window, ``<kind>:<window_id>`` (:func:`window_state_key`), so
all records of one window meet in one partition. Layout under that key ``W`` (values JSON, never pickle):

* ``W|h``: the :class:`WindowHeader` (bounds, number of record slots, status);
* ``W|i|<settlement_id>``: the record's slot number and leaf hash (:class:`SlotRef`), used to de-duplicate and
  supersede while the window is open and to absorb re-deliveries after it was anchored;
* ``W|r|<n>``: slot ``n``, the canonical bytes of the latest version of one settlement while the window is open;
  only its settlement id once the window is closed (what a later purge needs to find the ``i`` entries).

Adding a record touches at most four keys, whatever the window's size; closing reads the window's slots once.
A per-partition :class:`DueIndex` (key ``due``) lists the open windows' anchoring times and the closed windows'
purge times (a few entries per kind and period), so a wall-clock tick never scans the state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter

from edream.runtime.contract import KeyValueState
from streams.anchoring.merkle import leaf_hash_bytes
from streams.anchoring.windows import WindowKey, supersedes
from streams.settlement.canonical import canonical_bytes


def window_state_key(key: WindowKey) -> str:
    """``FLEX:2026-11-23T10:15Z/15m``: the state key (and partition key) of one anchor window."""
    return f"{key.kind}:{key.window_id}"


class WindowStatus(StrEnum):
    OPEN = "open"
    ANCHORED = "anchored"
    #: the chain holds another root for this window (records changed after anchoring, or a lost state)
    CONFLICT = "conflict"
    #: the contract refused the anchor for a reason no retry can fix
    REFUSED = "refused"


@dataclass
class WindowHeader:
    """One window's bounds (UTC epoch ms, end exclusive), its slot count and status."""

    kind: str
    start_ms: int
    end_ms: int
    slots: int = 0
    status: WindowStatus = WindowStatus.OPEN

    @property
    def key(self) -> WindowKey:
        return WindowKey(self.kind, self.start_ms, self.end_ms)


@dataclass
class SlotRef:
    """Where a settlement sits in its window: slot number and 0x-hex leaf hash."""

    slot: int
    leaf: str


@dataclass(frozen=True, order=True)
class DueEntry:
    """``action`` (``anchor`` or ``purge``) of window ``wkey`` is due at ``at_ms`` (UTC epoch ms)."""

    at_ms: int
    action: str
    wkey: str


ANCHOR, PURGE = "anchor", "purge"
_HEADER = TypeAdapter(WindowHeader)
_SLOT = TypeAdapter(SlotRef)
_DUE = TypeAdapter(list[DueEntry])


class AddOutcome(StrEnum):
    ADDED = "added"
    SUPERSEDED = "superseded"
    #: an equal or newer version is held (or, once anchored, this exact record was anchored)
    DUPLICATE = "duplicate"
    #: the window is closed and this record is not the one it anchored
    LATE = "late"


class DueIndex:
    """The partition's ``due`` list, kept sorted (small: open windows plus closed ones awaiting purge)."""

    KEY = "due"

    def __init__(self, state: KeyValueState):
        self.state = state

    def entries(self) -> list[DueEntry]:
        raw = self.state.get(self.KEY)
        return _DUE.validate_json(raw) if raw else []

    def add(self, entry: DueEntry) -> None:
        entries = self.entries()
        if entry not in entries:
            self._write(sorted([*entries, entry]))

    def remove(self, entry: DueEntry) -> None:
        self._write([e for e in self.entries() if e != entry])

    def due(self, now_ms: int) -> list[DueEntry]:
        """Entries due at ``now_ms`` (oldest first); they stay listed until :meth:`remove`."""
        return [e for e in self.entries() if e.at_ms <= now_ms]

    def _write(self, entries: list[DueEntry]) -> None:
        if entries:
            self.state.set(self.KEY, _DUE.dump_json(entries))
        else:
            self.state.delete(self.KEY)


class WindowState:
    """Windows of one partition (see module docstring)."""

    def __init__(self, state: KeyValueState):
        self.state = state
        self.due = DueIndex(state)

    # -- header ---------------------------------------------------------------------------------------------
    def header(self, wkey: str) -> WindowHeader | None:
        raw = self.state.get(f"{wkey}|h")
        return _HEADER.validate_json(raw) if raw else None

    def _put_header(self, wkey: str, header: WindowHeader) -> None:
        self.state.set(f"{wkey}|h", _HEADER.dump_json(header))

    def _ref(self, wkey: str, sid: str) -> SlotRef | None:
        raw = self.state.get(f"{wkey}|i|{sid}")
        return _SLOT.validate_json(raw) if raw else None

    # -- records --------------------------------------------------------------------------------------------
    def add(self, key: WindowKey, record: dict[str, Any], anchor_at_ms: int) -> AddOutcome:
        """Add ``record`` (a validated settlement of window ``key``); a new window is due at ``anchor_at_ms``."""
        wkey = window_state_key(key)
        body = canonical_bytes(record)
        leaf = "0x" + leaf_hash_bytes(body).hex()
        sid = str(record["settlement_id"])
        header = self.header(wkey)
        if header is None:
            header = WindowHeader(key.kind, key.start_ms, key.end_ms)
            self.due.add(DueEntry(anchor_at_ms, ANCHOR, wkey))
        ref = self._ref(wkey, sid)
        if header.status is not WindowStatus.OPEN:
            return AddOutcome.DUPLICATE if ref is not None and ref.leaf == leaf else AddOutcome.LATE
        if ref is None:
            ref = SlotRef(header.slots, leaf)
            header.slots += 1
            self._put_header(wkey, header)
            outcome = AddOutcome.ADDED
        else:
            held = json.loads(self.state.get(f"{wkey}|r|{ref.slot}") or b"{}")
            if not supersedes(record, held):
                return AddOutcome.DUPLICATE
            ref.leaf = leaf
            outcome = AddOutcome.SUPERSEDED
        self.state.set(f"{wkey}|r|{ref.slot}", body)
        self.state.set(f"{wkey}|i|{sid}", _SLOT.dump_json(ref))
        return outcome

    def records(self, wkey: str, header: WindowHeader) -> list[dict[str, Any]]:
        """The latest version of every settlement of an open window, in slot order (slots are contiguous)."""
        return [json.loads(self.state.get(f"{wkey}|r|{n}") or b"null") for n in range(header.slots)]

    # -- closing --------------------------------------------------------------------------------------------
    def close(
        self,
        entry: DueEntry,
        header: WindowHeader,
        records: list[dict[str, Any]],
        status: WindowStatus,
        purge_at: int,
    ) -> None:
        """Mark the window of the due ``entry`` ``status``, drop the record bodies (keep their ids and leaves),
        and schedule its purge at ``purge_at`` (UTC epoch ms)."""
        for n, rec in enumerate(records):
            self.state.set(f"{entry.wkey}|r|{n}", str(rec["settlement_id"]).encode())
        header.status = status
        self._put_header(entry.wkey, header)
        self.due.remove(entry)
        self.due.add(DueEntry(purge_at, PURGE, entry.wkey))

    def purge(self, entry: DueEntry) -> None:
        """Forget a closed window entirely (its records are past the validation bound by now)."""
        wkey = entry.wkey
        header = self.header(wkey)
        if header is not None:
            for n in range(header.slots):
                sid = self.state.get(f"{wkey}|r|{n}")
                if sid is not None:
                    self.state.delete(f"{wkey}|i|{sid.decode()}")
                    self.state.delete(f"{wkey}|r|{n}")
            self.state.delete(f"{wkey}|h")
        self.due.remove(entry)
