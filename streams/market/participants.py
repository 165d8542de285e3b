"""Market participant registry (HL-UC02 LL-UC01): prosumer id <-> Ethereum address <-> metering points.

The registry is the materialised view of the compacted topic ``market.participants.v1`` (key participant_id,
event ``MarketParticipant``): the record with the highest ``updated_at`` per participant wins, so replaying the
topic in any order rebuilds the same registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from edream.runtime.view_changes import ViewChanges
from streams.eip712 import checksum_address

log = logging.getLogger(__name__)


class ParticipantStatus(StrEnum):
    PENDING_DEPOSIT = "PENDING_DEPOSIT"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    REJECTED = "REJECTED"


class Participant(BaseModel):
    """A registered prosumer. ``meters`` are the device ids whose 15-min intervals settle its trades."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    participant_id: str
    prosumer_id: str
    eth_address: str
    meters: tuple[str, ...] = ()
    status: ParticipantStatus = ParticipantStatus.ACTIVE
    updated_at: int = 0  # UTC epoch ms

    @field_validator("eth_address")
    @classmethod
    def _checksum(cls, v: str) -> str:
        return checksum_address(v)

    @property
    def active(self) -> bool:
        return self.status is ParticipantStatus.ACTIVE

    def to_avro(self) -> dict[str, Any]:
        rec = self.model_dump()
        rec["meters"] = list(self.meters)
        rec["status"] = self.status.value
        rec["event_id"] = f"{self.participant_id}/{self.updated_at}"
        return rec

    @classmethod
    def from_avro(cls, rec: dict[str, Any]) -> Participant:
        return cls.model_validate({k: v for k, v in rec.items() if k != "event_id"})


class ParticipantRegistry:
    """In-memory registry with lookups by participant id, address and meter."""

    def __init__(self, participants: list[Participant] | None = None):
        self._by_id: dict[str, Participant] = {}
        for p in participants or []:
            self.upsert(p)

    def upsert(self, p: Participant) -> bool:
        """Apply one registry record; older versions (lower ``updated_at``) are ignored. True if applied."""
        old = self._by_id.get(p.participant_id)
        if old is not None and old.updated_at > p.updated_at:
            return False
        self._by_id[p.participant_id] = p
        return True

    def get(self, participant_id: str) -> Participant | None:
        return self._by_id.get(participant_id)

    def by_address(self, address: str) -> Participant | None:
        a = address.lower()
        return next((p for p in self._by_id.values() if p.eth_address.lower() == a), None)

    def by_meter(self, meter_id: str) -> Participant | None:
        return next((p for p in self._by_id.values() if meter_id in p.meters), None)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self):
        return iter(sorted(self._by_id.values(), key=lambda p: p.participant_id))


class ParticipantView:
    """The registry as a :class:`~edream.runtime.contract.View` of the compacted ``market.participants.v1`` (key
    participant_id): the latest record per participant (compaction keeps the latest by offset, so producers write
    a participant's versions in ``updated_at`` order). Decoded records are cached by their bytes; an undecodable
    or invalid record counts as not registered (its orders are rejected UNKNOWN_PARTICIPANT) and is logged."""

    def __init__(
        self, view: Any, decode: Callable[[bytes], tuple[str, dict[str, Any]]], cache_size: int = 65_536
    ):
        self.view = view
        self._decode = decode
        self._cache: dict[bytes, Participant | None] = {}
        self._cache_size = cache_size
        self._meter_changes = ViewChanges(view)
        self._meters: dict[str, Participant] = {}
        self._meters_of: dict[bytes, tuple[str, ...]] = {}

    def get(self, participant_id: str) -> Participant | None:
        raw = self.view.get(participant_id.encode())
        if raw is None:
            return None
        if raw not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[raw] = self._parse(participant_id, raw)
        return self._cache[raw]

    def by_meter(self, meter_id: str) -> Participant | None:
        """The participant whose meters include ``meter_id`` (kept in step with the view incrementally)."""
        changes = self._meter_changes.poll()
        for key in [*changes.removed, *(k for k, _ in changes.changed)]:
            for meter in self._meters_of.pop(key, ()):
                if (owner := self._meters.get(meter)) is not None and owner.participant_id == key.decode():
                    del self._meters[meter]
        for key, _ in changes.changed:
            p = self.get(key.decode())
            if p is not None:
                self._meters_of[key] = p.meters
                for meter in p.meters:
                    self._meters.setdefault(meter, p)
        return self._meters.get(meter_id)

    def _parse(self, participant_id: str, raw: bytes) -> Participant | None:
        try:
            name, rec = self._decode(raw)
            if name != "MarketParticipant":
                raise ValueError(f"a {name} record on the participant registry")
            p = Participant.from_avro(rec)
            if p.participant_id != participant_id:
                raise ValueError(f"record of {p.participant_id} under key {participant_id}")
            return p
        except Exception as exc:  # noqa: BLE001 - a broken registry entry must not take orders down
            log.warning("market: registry entry %s unusable: %s", participant_id, exc)
            return None
