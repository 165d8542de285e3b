"""The market's stream logic as one engine-independent state machine: events in, events out.

Inputs (by method): registry records, orders, meter intervals and timer ticks, each with its event time (UTC ms).
Outputs: :class:`Out` events (topic, schema, key, record) to publish. A Faust agent, a plain Kafka loop or a test
drives it the same way. Everything emitted has a deterministic id, so replaying inputs after a crash re-emits
identical events that idempotent sinks drop.

Flow: an accepted order opens its slot on the :class:`GateClock`; every input advances the watermark, and every
slot whose gate closure the watermark passed is cleared once (ClearingResult + Trades). Once a cleared slot has
ended and all meters of its traders have reported their intervals, it is settled (Settlement per party).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from streams.market.clearing import clear
from streams.market.config import MarketConfig
from streams.market.events import TradeEvent, clearing_record, rejection_record, trades_of
from streams.market.gate import GateClock
from streams.market.market_order import MarketOrder
from streams.market.metering import MeterLedger
from streams.market.participants import Participant, ParticipantRegistry
from streams.market.settlement import Metered, settle_session
from streams.market.validation import OrderValidator, bounds_verdict
from streams.outputs import Out
from streams.validation.fields import Checker, InvalidRecord
from streams.validation.limits import current_limits
from streams.validation.market import check_market_order

TOPIC_ORDERS_ACCEPTED = "market.orders.accepted.v1"
TOPIC_CLEARING = "market.clearing.v1"
TOPIC_TRADES = "market.trades.v1"
TOPIC_SETTLEMENT = "settlement.market.v1"
TOPIC_REJECTIONS = "platform.rejections.v1"


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class MarketProcessor:
    """State: registry, gate clock, open books, cleared-but-unsettled trades, meter ledger."""

    def __init__(self, config: MarketConfig, registry: ParticipantRegistry | None = None):
        self.config = config
        self.registry = registry or ParticipantRegistry()
        self.clock = GateClock(config)
        self.validator = OrderValidator(config, self.registry, self.clock)
        self.books: dict[int, dict[str, MarketOrder]] = defaultdict(dict)
        self.unsettled: dict[int, list[TradeEvent]] = {}
        self.meters = MeterLedger()
        self.settled: set[int] = set()

    # -- inputs ---------------------------------------------------------------------------------------------
    def on_participant(self, p: Participant) -> None:
        self.registry.upsert(p)

    def on_order(self, order: MarketOrder, event_time: int, now_ms: int | None = None) -> list[Out]:
        """``event_time`` is the trusted arrival time (broker LogAppendTime), never the client's ``client_ts``: a
        client clock must not move the watermark. ``now_ms`` is the wall clock (UTC epoch ms; default: now).

        Only a validated order moves the clock: first its contract bounds against the wall clock
        (:func:`streams.validation.market.check_market_order`: arrival time, ``client_ts``, horizon, quantity,
        field shapes), then participant, signature, session, quantity and price; a failure is rejected with the
        clock untouched. Then the clock advances to ``event_time``, so an order arriving at or after its gate
        closure is rejected (GATE_CLOSED) even when it is back-dated."""
        now = wall_clock_ms() if now_ms is None else now_ms
        if errors := check_market_order(order, event_time, now):
            return [
                Out(
                    TOPIC_REJECTIONS,
                    "Rejection",
                    order.order_id,
                    rejection_record(order, bounds_verdict(errors), now),
                )
            ]
        verdict = self.validator.check_terms(order)
        if not verdict.accepted:
            return [
                Out(
                    TOPIC_REJECTIONS,
                    "Rejection",
                    order.order_id,
                    rejection_record(order, verdict, event_time),
                )
            ]
        out = self.on_tick(event_time)
        verdict = self.validator.admit(order)
        if verdict.accepted and not verdict.duplicate:
            self.clock.open(order.slot_start)
            self.books[order.slot_start][order.order_id] = order
            out.append(Out(TOPIC_ORDERS_ACCEPTED, "MarketOrder", order.session_id, order.to_avro()))
        elif not verdict.accepted:
            rec = rejection_record(order, verdict, event_time)
            out.append(Out(TOPIC_REJECTIONS, "Rejection", order.order_id, rec))
        return out

    def on_interval(self, interval: dict[str, Any], event_time: int, now_ms: int | None = None) -> list[Out]:
        """Meter data for settlement; its ``event_time`` (UTC epoch ms) moves the clock only within the bounds of
        the wall clock ``now_ms`` (default: now), else :class:`InvalidRecord` (dead-lettered) and nothing changes."""
        now = wall_clock_ms() if now_ms is None else now_ms
        lim = current_limits()
        c = Checker()
        if not c.event_time("arrival_time", event_time, now, lim.max_past_ms, lim.max_future_ms):
            raise InvalidRecord("IntervalEnergy", c.errors)
        self.meters.add(interval)
        return self.on_tick(event_time)

    def on_tick(self, event_time: int) -> list[Out]:
        """Advance event time: clear slots whose gate closed, settle slots whose delivery is fully metered."""
        out: list[Out] = []
        for slot in self.clock.advance(event_time):
            out += self._clear(slot)
        for slot in sorted(self.unsettled):
            out += self._try_settle(slot)
        return out

    # -- steps ----------------------------------------------------------------------------------------------
    def _clear(self, slot: int) -> list[Out]:
        book = self.books.pop(slot, {})
        session = self.config.session_id(slot)
        result = clear([o.to_book() for o in book.values()], self.config.rule, self.config.rationing)
        gate = self.config.gate_closure(slot)
        trades = trades_of(result, session, slot)
        if trades:
            self.unsettled[slot] = trades
        return [
            Out(TOPIC_CLEARING, "ClearingResult", session, clearing_record(result, session, slot, gate))
        ] + [Out(TOPIC_TRADES, "Trade", session, t.to_avro()) for t in trades]

    def _try_settle(self, slot: int) -> list[Out]:
        if self.clock.watermark is None or self.clock.watermark < slot + self.config.slot_ms:
            return []
        trades = self.unsettled[slot]
        parties = {t.buyer_id for t in trades} | {t.seller_id for t in trades}
        metered: dict[str, Metered] = {}
        for pid in parties:
            p = self.registry.get(pid)
            if p is None or not self.meters.is_complete(p, slot, self.config.slot_ms):
                return []
            metered[pid] = self.meters.metered(p, slot, self.config.slot_ms)
        del self.unsettled[slot]
        self.settled.add(slot)
        return [
            Out(TOPIC_SETTLEMENT, "Settlement", s.window_id, s.to_avro())
            for s in settle_session(self.config, trades, metered)
        ]

    def book(self, slot: int) -> list[MarketOrder]:
        """The open book of a slot (accepted orders not yet cleared)."""
        return list(self.books.get(slot, {}).values())
