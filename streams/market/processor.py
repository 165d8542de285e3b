"""The market's stream logic per session, engine-independent: events and a partition's state in, events out.

Inputs (by method): orders, meter intervals and wall-clock ticks, each with the partition's key/value state
(:class:`~streams.market.session_state.SessionStore` lays it out). Participants are looked up in a registry
(:class:`~streams.market.validation.Participants`: the stage's view of ``market.participants.v1``). Outputs:
:class:`Out` events (topic, schema, key, record). Everything emitted has a deterministic id, and the state of a
session lives under its session id only, so the result is the same whichever worker owns the partition and
replaying inputs after a crash re-emits identical events that idempotent sinks drop.

Flow of a session (one delivery slot, :meth:`MarketConfig.session_id`): a validated order moves the session's
clock to its arrival time (minus the allowed lateness) and, if the gate is still open, enters the book. Once the
clock passes the gate closure (by an order's event time or by a tick of the wall clock, never by meter data: a
session's orders and intervals come through different topics in no guaranteed order) the session is cleared once
(ClearingResult + Trades; within the congestion limits of the config's ``network`` section when it has one,
:mod:`~streams.market.network_clearing`). When its clock has passed the slot end and every 15-min interval of every trading
party's meters has arrived, it is settled (Settlement per party). Intervals that come before their party's order
are kept (registered participants' meters only) until the session expires. Only validated input moves a clock:
an order after its bounds and its participant/signature/session/quantity/price checks, an interval after its
bounds (:func:`~streams.market.metering.check_interval`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from edream.runtime.contract import KeyValueState
from streams.market.clearing import clear
from streams.market.config import MarketConfig
from streams.market.events import clearing_record, rejection_record, trades_of
from streams.market.market_order import MarketOrder
from streams.market.metering import MeteredInterval, check_interval, metered_of, slot_interval_starts
from streams.market.network_clearing import NetworkStatus, clear_with_network
from streams.market.session_state import Party, Phase, SessionHeader, SessionStore
from streams.market.settlement import settle_session
from streams.market.validation import OrderValidator, Participants, Verdict, bounds_verdict
from streams.outputs import Out
from streams.validation.limits import Limits, current_limits
from streams.validation.market import check_market_order

log = logging.getLogger(__name__)

TOPIC_ORDERS_ACCEPTED = "market.orders.accepted.v1"
TOPIC_CLEARING = "market.clearing.v1"
TOPIC_TRADES = "market.trades.v1"
TOPIC_SETTLEMENT = "settlement.market.v1"
TOPIC_REJECTIONS = "platform.rejections.v1"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class MarketProcessor:
    """Holds no state of its own (config, registry, limits, wall clock); every call gets the partition state."""

    def __init__(
        self,
        config: MarketConfig,
        participants: Participants,
        limits: Limits | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
    ):
        self.config, self.participants = config, participants
        self.limits = limits or current_limits()
        self.wall_clock = wall_clock
        self.validator = OrderValidator(config, participants)
        self.network = None if config.network is None else config.network.for_slot(config.slot_ms)

    # -- inputs ---------------------------------------------------------------------------------------------
    def on_order(
        self, order: MarketOrder, event_time: int, state: KeyValueState, now_ms: int | None = None
    ) -> list[Out]:
        """``event_time`` is the trusted arrival time (broker timestamp, UTC epoch ms), never the client's
        ``client_ts``; ``now_ms`` the wall clock (default: now).

        First the contract bounds against the wall clock (:func:`streams.validation.market.check_market_order`),
        then participant, signature, session, quantity and price; a failure is rejected with no state touched.
        Then the session's clock advances to ``event_time``, so an order arriving at or after its gate closure is
        rejected (GATE_CLOSED) even when it is back-dated; then the nonce."""
        now = self.wall_clock() if now_ms is None else now_ms
        if errors := check_market_order(order, event_time, now, self.limits):
            return [self._reject(order, bounds_verdict(errors), now)]
        verdict = self.validator.check_terms(order)
        if not verdict.accepted:
            return [self._reject(order, verdict, event_time)]
        store = SessionStore(state)
        session = order.session_id
        header = store.header(session)
        timer = None if header is None else self._timer(header)
        if header is None:
            header = SessionHeader(slot_start=order.slot_start)
            if store.has_early(session):  # early delivery data armed the session's expiry
                timer = self._expiry(header)
        out = self._advance(store, session, header, event_time - self.config.allowed_lateness_ms)
        closed = header.phase is not Phase.OPEN
        if closed and store.was_in_cleared_book(session, order.order_id):
            verdict = Verdict(True, duplicate=True)  # redelivery of an order the cleared book held
        else:
            owner = store.nonce_owner(session, order.address, order.nonce)
            verdict = self.validator.admit(order, closed, owner)
        if verdict.accepted and not verdict.duplicate:
            self._admit(store, session, header, order)
            out.append(Out(TOPIC_ORDERS_ACCEPTED, "MarketOrder", session, order.to_avro()))
        elif not verdict.accepted:
            out.append(self._reject(order, verdict, event_time))
        if timer is not None or header.n_orders:  # a session gets state with its first accepted order
            self._save(store, session, header, timer)
        return out

    def on_interval(
        self, interval: dict, event_time: int, state: KeyValueState, now_ms: int | None = None
    ) -> list[Out]:
        """Meter data (an ``IntervalEnergy`` record) of the session of its slot, arrived at ``event_time`` (UTC
        epoch ms). Out of bounds: :class:`~streams.validation.fields.InvalidRecord` (dead-lettered), nothing
        changes. A session without state (no accepted order) has nothing to settle: the interval is ignored."""
        now = self.wall_clock() if now_ms is None else now_ms
        iv = check_interval(interval, event_time, now, self.limits)
        store = SessionStore(state)
        slot = self.config.slot_of(iv.interval_start)
        session = self.config.session_id(slot)
        header = store.header(session)
        if header is None:  # no order of the session processed yet: its orders may still be in flight
            if self._keep_early(store, session, iv):
                store.due().set(session, self._expiry_of(slot))
            return []
        if header.phase is Phase.DONE:
            return []
        timer = self._timer(header)
        out: list[Out] = []
        if header.phase is Phase.CLEARED:
            # delivery data moves the clock only towards settlement: it never closes a gate (the session's
            # orders come through another topic and may still be in flight; orders and ticks close gates)
            out = self._advance(store, session, header, event_time - self.config.allowed_lateness_ms)
        if header.phase is not Phase.DONE and (owners := store.device_owners(session, iv.device_id)):
            old = self._put_interval(store, session, iv)
            if old is None and header.phase is Phase.CLEARED:
                for pid in owners:
                    party = store.party(session, pid)
                    if party is not None and party.trading:
                        header.missing -= 1
            out += self._try_settle(store, session, header)
        elif header.phase is Phase.OPEN:
            self._keep_early(store, session, iv)
        self._save(store, session, header, timer)
        return out

    def on_tick(self, now_ms: int, state: KeyValueState) -> list[Out]:
        """The wall clock is at least ``now_ms`` (UTC epoch ms): run the partition's due timers (gate closures,
        slot ends, expiry of finished sessions)."""
        store = SessionStore(state)
        out: list[Out] = []
        for _, session in store.due().pop_due(now_ms):
            header = store.header(session)
            if header is None:  # early delivery data of a session that never got an order
                store.drop_early(session)
                continue
            if now_ms >= self._expiry(header):
                self._expire(store, session, header)
                continue
            out += self._advance(store, session, header, now_ms - self.config.allowed_lateness_ms)
            self._save(store, session, header, None)
        return out

    def book(self, slot_start: int, state: KeyValueState) -> list[MarketOrder]:
        """The open book of a slot (accepted orders not yet cleared)."""
        store = SessionStore(state)
        session = self.config.session_id(slot_start)
        header = store.header(session)
        return [] if header is None else store.orders(session, header)

    # -- steps ----------------------------------------------------------------------------------------------
    def _advance(self, store: SessionStore, session: str, header: SessionHeader, watermark: int) -> list[Out]:
        """Move the session's clock; clear it when the gate closed, settle it when delivery is complete."""
        header.advance(watermark)
        out: list[Out] = []
        if header.phase is Phase.OPEN and self.config.gate_closure(header.slot_start) <= header.watermark:
            if header.n_orders == 0:  # no state yet: nothing to clear
                header.phase = Phase.DONE
                return out
            out += self._clear(store, session, header)
        return out + self._try_settle(store, session, header)

    def _admit(self, store: SessionStore, session: str, header: SessionHeader, order: MarketOrder) -> None:
        store.add_order(session, header, order)
        if store.party(session, order.participant_id) is None:
            p = self.participants.get(order.participant_id)
            meters = list(dict.fromkeys(p.meters)) if p is not None else []
            store.add_party(session, header, Party(order.participant_id, meters))

    def _clear(self, store: SessionStore, session: str, header: SessionHeader) -> list[Out]:
        slot = header.slot_start
        book = store.orders(session, header)
        orders = [o.to_book() for o in book]
        network = None
        if self.network is None:
            result = clear(orders, self.config.rule, self.config.rationing)
        else:
            network = clear_with_network(orders, self.network, self.config.rule, self.config.rationing)
            result = network.clearing
            if network.status is NetworkStatus.FAILED:
                log.error(
                    "market: session %s not cleared within the grid limits: %s", session, network.reason
                )
        trades = trades_of(result, session, slot)
        store.put_cleared_book(session, [o.order_id for o in book])
        store.drop_book(session, header)
        header.n_orders = 0
        if trades:
            store.put_trades(session, trades)
            header.phase = Phase.CLEARED
            header.missing = self._mark_trading(
                store, session, {t.buyer_id for t in trades} | {t.seller_id for t in trades}, slot
            )
        else:
            store.drop_delivery(session, header, self._interval_starts(slot))
            header.phase = Phase.DONE
        gate = self.config.gate_closure(slot)
        return [
            Out(
                TOPIC_CLEARING,
                "ClearingResult",
                session,
                clearing_record(result, session, slot, gate, network),
            )
        ] + [Out(TOPIC_TRADES, "Trade", session, t.to_avro()) for t in trades]

    @staticmethod
    def _put_interval(store: SessionStore, session: str, iv: MeteredInterval) -> MeteredInterval | None:
        """Store the interval unless a higher version is held; return the one held before (None: the first)."""
        old = store.interval(session, iv.device_id, iv.interval_start)
        if old is None or iv.version >= old.version:
            store.put_interval(session, iv)
        return old

    def _keep_early(self, store: SessionStore, session: str, iv: MeteredInterval) -> bool:
        """An interval of a meter with no party in the session yet is kept if the meter is a registered
        participant's (its order may come later: orders and intervals reach the session through different
        topics, in no guaranteed order); other meters are not the market's. True if it is the session's first."""
        if self.participants.by_meter(iv.device_id) is None:
            return False
        self._put_interval(store, session, iv)
        return store.add_early(session, iv)

    def _mark_trading(self, store: SessionStore, session: str, parties: set[str], slot: int) -> int:
        """Mark the trading parties; return how many of their meters' intervals are still missing."""
        missing = 0
        for pid in sorted(parties):
            party = store.party(session, pid) or Party(pid)
            party.trading = True
            store.put_party(session, party)
            for device in party.meters:
                for start in self._interval_starts(slot):
                    if store.interval(session, device, start) is None:
                        missing += 1
        return missing

    def _try_settle(self, store: SessionStore, session: str, header: SessionHeader) -> list[Out]:
        slot = header.slot_start
        if (
            header.phase is not Phase.CLEARED
            or header.missing > 0
            or header.watermark is None
            or header.watermark < slot + self.config.slot_ms
        ):
            return []
        trades = store.trades(session)
        metered = {}
        for pid in sorted({t.buyer_id for t in trades} | {t.seller_id for t in trades}):
            party = store.party(session, pid) or Party(pid)
            intervals = [
                iv
                for device in party.meters
                for start in self._interval_starts(slot)
                if (iv := store.interval(session, device, start)) is not None
            ]
            metered[pid] = metered_of(intervals)
        store.drop_delivery(session, header, self._interval_starts(slot))
        header.phase = Phase.DONE
        return [
            Out(TOPIC_SETTLEMENT, "Settlement", s.window_id, s.to_avro())
            for s in settle_session(self.config, trades, metered)
        ]

    # -- timers ---------------------------------------------------------------------------------------------
    def _timer(self, header: SessionHeader) -> int:
        """When the session next needs a tick (UTC epoch ms of wall clock): its gate, its slot end, or its expiry."""
        lateness, slot = self.config.allowed_lateness_ms, header.slot_start
        if header.phase is Phase.OPEN:
            return self.config.gate_closure(slot) + lateness
        end = slot + self.config.slot_ms + lateness
        if header.phase is Phase.CLEARED and (header.watermark is None or header.watermark + lateness < end):
            return end
        return self._expiry(header)

    def _expiry(self, header: SessionHeader) -> int:
        return self._expiry_of(header.slot_start)

    def _expiry_of(self, slot_start: int) -> int:
        """After this (UTC epoch ms) no input of the session passes its bounds any more (``max_past_ms``): an
        order's ``client_ts`` is then after the gate, an interval too old. The session's state can go."""
        return slot_start + self.config.slot_ms + self.limits.max_past_ms

    def _save(self, store: SessionStore, session: str, header: SessionHeader, timer: int | None) -> None:
        """Write the header and move its timer if the phase or clock changed it (``timer``: the armed one)."""
        store.put_header(session, header)
        new = self._timer(header)
        if new != timer:
            store.due().set(session, new, timer)

    def _expire(self, store: SessionStore, session: str, header: SessionHeader) -> None:
        if header.phase is Phase.CLEARED:
            log.warning(
                "market: session %s expired unsettled, %d meter intervals never arrived",
                session,
                header.missing,
            )
        store.drop_book(session, header)
        store.drop_delivery(session, header, self._interval_starts(header.slot_start))
        store.delete_header(session)

    def _interval_starts(self, slot: int) -> range:
        return slot_interval_starts(slot, self.config.slot_ms)

    def _reject(self, order: MarketOrder, verdict, rejected_at: int) -> Out:
        return Out(
            TOPIC_REJECTIONS, "Rejection", order.order_id, rejection_record(order, verdict, rejected_at)
        )
