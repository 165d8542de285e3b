"""The market's state in a partition's key/value store: one small record per fact, keyed by session.

Every key starts with the session id ``S`` (the partition key of the session's orders and of the intervals that
settle it), so all state of a session lives in one partition; a record reads and writes only the keys it
touches (no whole-book or whole-partition blob). Values are JSON (orjson), never pickle.

==========================  ==========================================================================
key                         value
==========================  ==========================================================================
``S``                       :class:`SessionHeader`: slot, clock (watermark), phase, counters
``S|o|<i>``                 the i-th accepted order (MarketOrder record), deleted at clearing
``S|n|<address>|<nonce>``   id of the order that used the nonce, deleted at clearing
``S|p|<i>``                 participant id of the i-th party that placed an order
``S|pp|<participant>``      :class:`Party`: its meters when it first ordered, trading after clearing
``S|d|<device>``            participant ids whose meter the device is
``S|i|<device>|<start>``    :class:`~streams.market.metering.MeteredInterval` of one meter's 15-min interval
``S|e``                     early delivery data: {device: [interval starts]} of a registered participant's meter
                            that came before the device had a party in the session (its orders still in flight)
``S|t``                     the session's trades (written once at clearing, read once at settlement)
``S|a``                     8-byte digests of the orders the cleared book held (kept until expiry, so a
                            redelivered accepted order stays a duplicate, never a GATE_CLOSED rejection)
``due|<hour>``              :class:`DueIndex` bucket: session -> UTC epoch ms its next timer is due
``due|next``                the first hour (epoch ms // 3.6e6) that may hold due timers
==========================  ==========================================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from edream.runtime.contract import KeyValueState
from streams.market.events import TradeEvent
from streams.market.market_order import MarketOrder
from streams.market.metering import MeteredInterval

HOUR_MS = 3_600_000


class Phase(StrEnum):
    """OPEN: the book takes orders; CLEARED: cleared with trades, settlement waits for delivery data; DONE:
    settled or cleared without trades (the header stays until it expires so late orders are still refused)."""

    OPEN = "OPEN"
    CLEARED = "CLEARED"
    DONE = "DONE"


@dataclass
class SessionHeader:
    """``watermark``: the session's event-time clock (UTC epoch ms, already minus the allowed lateness; None until
    a validated input or a tick reached it); ``missing``: 15-min intervals of trading parties' meters settlement
    still waits for (valid once CLEARED)."""

    slot_start: int
    phase: Phase = Phase.OPEN
    watermark: int | None = None
    n_orders: int = 0
    n_parties: int = 0
    missing: int = 0

    def advance(self, watermark: int) -> None:
        """Move the clock forward (never back)."""
        if self.watermark is None or watermark > self.watermark:
            self.watermark = watermark


@dataclass
class Party:
    """A participant that ordered in the session: the meters that settle it (from the registry, when it first
    ordered) and whether it traded."""

    participant_id: str
    meters: list[str] = field(default_factory=list)
    trading: bool = False


def _dump(value: Any) -> bytes:
    return orjson.dumps(value)


class SessionStore:
    """Typed access to the keys above over one partition's :class:`KeyValueState`."""

    def __init__(self, state: KeyValueState):
        self.state = state

    # -- header ----------------------------------------------------------------------------------------------
    def header(self, session: str) -> SessionHeader | None:
        raw = self.state.get(session)
        if raw is None:
            return None
        d = orjson.loads(raw)
        d["phase"] = Phase(d["phase"])
        return SessionHeader(**d)

    def put_header(self, session: str, header: SessionHeader) -> None:
        self.state.set(session, _dump(asdict(header)))

    def delete_header(self, session: str) -> None:
        self.state.delete(session)
        self.state.delete(f"{session}|a")

    # -- book ------------------------------------------------------------------------------------------------
    def add_order(self, session: str, header: SessionHeader, order: MarketOrder) -> None:
        self.state.set(f"{session}|o|{header.n_orders}", _dump(order.to_avro()))
        self.state.set(_nonce_key(session, order.address, order.nonce), order.order_id.encode())
        header.n_orders += 1

    def orders(self, session: str, header: SessionHeader) -> list[MarketOrder]:
        out = []
        for i in range(header.n_orders):
            raw = self.state.get(f"{session}|o|{i}")
            if raw is not None:
                out.append(MarketOrder.from_avro(orjson.loads(raw)))
        return out

    def drop_book(self, session: str, header: SessionHeader) -> None:
        for order in self.orders(session, header):
            self.state.delete(_nonce_key(session, order.address, order.nonce))
        for i in range(header.n_orders):
            self.state.delete(f"{session}|o|{i}")

    def put_cleared_book(self, session: str, order_ids: list[str]) -> None:
        self.state.set(f"{session}|a", b"".join(_digest(o) for o in order_ids))

    def was_in_cleared_book(self, session: str, order_id: str) -> bool:
        raw = self.state.get(f"{session}|a") or b""
        d = _digest(order_id)
        return any(raw[i : i + 8] == d for i in range(0, len(raw), 8))

    def nonce_owner(self, session: str, address: str, nonce: int) -> str | None:
        raw = self.state.get(_nonce_key(session, address, nonce))
        return None if raw is None else raw.decode()

    # -- parties and their meters ----------------------------------------------------------------------------
    def party(self, session: str, participant_id: str) -> Party | None:
        raw = self.state.get(f"{session}|pp|{participant_id}")
        return None if raw is None else Party(**orjson.loads(raw))

    def put_party(self, session: str, party: Party) -> None:
        self.state.set(f"{session}|pp|{party.participant_id}", _dump(asdict(party)))

    def add_party(self, session: str, header: SessionHeader, party: Party) -> None:
        """Register a new party of the session and map its meters to it."""
        self.state.set(f"{session}|p|{header.n_parties}", party.participant_id.encode())
        header.n_parties += 1
        self.put_party(session, party)
        for device in party.meters:
            owners = self.device_owners(session, device)
            if party.participant_id not in owners:
                self.state.set(f"{session}|d|{device}", _dump([*owners, party.participant_id]))

    def parties(self, session: str, header: SessionHeader) -> list[Party]:
        out = []
        for i in range(header.n_parties):
            pid = self.state.get(f"{session}|p|{i}")
            party = None if pid is None else self.party(session, pid.decode())
            if party is not None:
                out.append(party)
        return out

    def device_owners(self, session: str, device: str) -> list[str]:
        raw = self.state.get(f"{session}|d|{device}")
        return [] if raw is None else orjson.loads(raw)

    # -- metering --------------------------------------------------------------------------------------------
    def interval(self, session: str, device: str, start: int) -> MeteredInterval | None:
        raw = self.state.get(f"{session}|i|{device}|{start}")
        return None if raw is None else MeteredInterval(**orjson.loads(raw))

    def put_interval(self, session: str, interval: MeteredInterval) -> None:
        key = f"{session}|i|{interval.device_id}|{interval.interval_start}"
        self.state.set(key, _dump(asdict(interval)))

    def add_early(self, session: str, interval: MeteredInterval) -> bool:
        """Keep an interval of a meter that has no party in the session yet (its owner's order may still come:
        orders and intervals reach the session through different topics, in no guaranteed order). True if it
        is the session's first early interval."""
        early = self._early(session)
        starts = early.setdefault(interval.device_id, [])
        if interval.interval_start not in starts:
            starts.append(interval.interval_start)
            self.state.set(f"{session}|e", _dump(early))
        return len(early) == 1 and len(starts) == 1

    def has_early(self, session: str) -> bool:
        return self.state.get(f"{session}|e") is not None

    def drop_early(self, session: str) -> None:
        """Delete the early intervals of meters that never got a party."""
        for device, starts in self._early(session).items():
            if not self.device_owners(session, device):
                for start in starts:
                    self.state.delete(f"{session}|i|{device}|{start}")
        self.state.delete(f"{session}|e")

    def _early(self, session: str) -> dict[str, list[int]]:
        raw = self.state.get(f"{session}|e")
        return {} if raw is None else orjson.loads(raw)

    # -- trades ----------------------------------------------------------------------------------------------
    def trades(self, session: str) -> list[TradeEvent]:
        raw = self.state.get(f"{session}|t")
        return [] if raw is None else [TradeEvent(**t) for t in orjson.loads(raw)]

    def put_trades(self, session: str, trades: list[TradeEvent]) -> None:
        self.state.set(f"{session}|t", _dump([asdict(t) for t in trades]))

    def drop_delivery(self, session: str, header: SessionHeader, interval_starts: range) -> None:
        """Delete parties, meter maps, intervals (early ones too) and trades of a session that needs them no
        more."""
        self.drop_early(session)
        for i, party in enumerate(self.parties(session, header)):
            for device in party.meters:
                self.state.delete(f"{session}|d|{device}")
                for start in interval_starts:
                    self.state.delete(f"{session}|i|{device}|{start}")
            self.state.delete(f"{session}|pp|{party.participant_id}")
            self.state.delete(f"{session}|p|{i}")
        self.state.delete(f"{session}|t")
        header.n_parties = 0

    # -- timers ----------------------------------------------------------------------------------------------
    def due(self) -> DueIndex:
        return DueIndex(self.state)


def _digest(order_id: str) -> bytes:
    return hashlib.blake2b(order_id.encode(), digest_size=8).digest()


def _nonce_key(session: str, address: str, nonce: int) -> str:
    return f"{session}|n|{address.lower()}|{nonce}"


class DueIndex:
    """Per-partition timers: session -> the UTC epoch ms at which it needs a tick, in hourly buckets, so a tick
    reads one small key when nothing is due and adding a timer rewrites one bucket (not an index of every
    session). Each session has at most one timer (:meth:`set` moves it)."""

    NEXT = "due|next"

    def __init__(self, state: KeyValueState):
        self.state = state

    def _bucket(self, hour: int) -> dict[str, int]:
        raw = self.state.get(f"due|{hour}")
        return {} if raw is None else orjson.loads(raw)

    def _put_bucket(self, hour: int, bucket: dict[str, int]) -> None:
        if bucket:
            self.state.set(f"due|{hour}", _dump(bucket))
        else:
            self.state.delete(f"due|{hour}")

    def _next(self) -> int | None:
        raw = self.state.get(self.NEXT)
        return None if raw is None else int(raw)

    def set(self, session: str, at_ms: int, previous_ms: int | None = None) -> None:
        """Arm the session's timer at ``at_ms`` (UTC epoch ms), removing the one at ``previous_ms``."""
        if previous_ms is not None:
            self.cancel(session, previous_ms)
        hour = at_ms // HOUR_MS
        bucket = self._bucket(hour)
        bucket[session] = at_ms
        self._put_bucket(hour, bucket)
        nxt = self._next()
        if nxt is None or hour < nxt:
            self.state.set(self.NEXT, str(hour).encode())

    def cancel(self, session: str, at_ms: int) -> None:
        hour = at_ms // HOUR_MS
        bucket = self._bucket(hour)
        if bucket.pop(session, None) is not None:
            self._put_bucket(hour, bucket)

    def pop_due(self, now_ms: int) -> list[tuple[int, str]]:
        """Remove and return the timers due at ``now_ms``, as (due ms, session) in due order."""
        nxt = self._next()
        now_hour = now_ms // HOUR_MS
        if nxt is None or nxt > now_hour:
            return []
        due: list[tuple[int, str]] = []
        for hour in range(nxt, now_hour + 1):
            bucket = self._bucket(hour)
            if not bucket:
                continue
            ripe = {s: t for s, t in bucket.items() if t <= now_ms}
            if ripe:
                due += [(t, s) for s, t in ripe.items()]
                self._put_bucket(hour, {s: t for s, t in bucket.items() if t > now_ms})
        self.state.set(self.NEXT, str(now_hour).encode())
        return sorted(due)
