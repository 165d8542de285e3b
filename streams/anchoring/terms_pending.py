"""Enrolments waiting for registration, in a partition's key/value state (engine-independent, incremental).

* ``p|<prosumer_id>``: the latest enrolment of the prosumer not yet registered (:class:`PendingEnrolment`: its
  original bytes and position, so a refusal can be dead-lettered like the record itself). A newer enrolment of the
  same prosumer replaces it in place, so only the last one is acted on.
* a FIFO of prosumer ids (``q|head``, ``q|tail``, ``q|<n>``): the order prosumers became pending; a tick takes a
  batch from its head. A prosumer is queued once however many enrolments replace its pending one.

Every operation touches a constant number of keys (a batch: two per prosumer).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from pydantic import TypeAdapter

from edream.runtime.contract import KeyValueState, Record


@dataclass
class PendingEnrolment:
    """An enrolment record as it arrived: topic, partition, offset, key and value (base64 in state), and its
    validated ``updated_at`` (UTC epoch ms)."""

    topic: str
    partition: int
    offset: int
    key_b64: str
    value_b64: str
    updated_at: int

    @classmethod
    def of(cls, record: Record, updated_at: int) -> PendingEnrolment:
        return cls(
            record.topic,
            record.partition,
            record.offset,
            base64.b64encode(record.key or b"").decode(),
            base64.b64encode(record.value).decode(),
            updated_at,
        )

    @property
    def key(self) -> bytes:
        return base64.b64decode(self.key_b64)

    @property
    def value(self) -> bytes:
        return base64.b64decode(self.value_b64)


_PENDING = TypeAdapter(PendingEnrolment)


class PendingQueue:
    """Pending enrolments of one partition, first come first registered."""

    def __init__(self, state: KeyValueState):
        self.state = state

    def _int(self, key: str) -> int:
        raw = self.state.get(key)
        return int(raw) if raw else 0

    def put(self, prosumer_id: str, pending: PendingEnrolment) -> None:
        """Make ``pending`` the prosumer's pending enrolment (queued if the prosumer was not pending yet)."""
        key = f"p|{prosumer_id}"
        if self.state.get(key) is None:
            tail = self._int("q|tail")
            self.state.set(f"q|{tail}", prosumer_id.encode())
            self.state.set("q|tail", str(tail + 1).encode())
        self.state.set(key, _PENDING.dump_json(pending))

    def head(self, limit: int) -> list[tuple[str, PendingEnrolment]]:
        """Up to ``limit`` (prosumer id, pending enrolment) from the head, without removing them."""
        head, tail = self._int("q|head"), self._int("q|tail")
        out = []
        for n in range(head, min(tail, head + limit)):
            pid = (self.state.get(f"q|{n}") or b"").decode()
            raw = self.state.get(f"p|{pid}")
            if raw is not None:
                out.append((pid, _PENDING.validate_json(raw)))
        return out

    def pop(self, count: int) -> None:
        """Remove ``count`` entries from the head (their prosumers are no longer pending)."""
        head, tail = self._int("q|head"), self._int("q|tail")
        end = min(tail, head + count)
        for n in range(head, end):
            pid = (self.state.get(f"q|{n}") or b"").decode()
            self.state.delete(f"p|{pid}")
            self.state.delete(f"q|{n}")
        if end == tail:
            self.state.delete("q|head")
            self.state.delete("q|tail")
        else:
            self.state.set("q|head", str(end).encode())

    def __len__(self) -> int:
        return self._int("q|tail") - self._int("q|head")
