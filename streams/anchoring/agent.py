"""Kafka wiring of the anchorer: settlement topics in, AnchorReceipts (and rejections) out.

Consumes ``settlement.flex.v1`` and ``settlement.market.v1`` (Avro ``Settlement``), groups records into anchor
windows (:class:`~streams.anchoring.windows.WindowGrouper`, event time), anchors each window once it closes,
stores receipt + manifest in ClickHouse, produces the receipt to ``chain.anchor.receipts.v1`` (key window_id)
and only then commits offsets. The committed offset of a partition never passes the first record of a window
that is still open, so a restart replays exactly the windows not yet anchored; replays of anchored windows are
absorbed by the chain check in :class:`~streams.anchoring.anchorer.Anchorer`.

A replayed window that is already anchored is absorbed if its records are in the window's manifest. Late
records (window already closed) and conflicts (records changed after anchoring) are published to
``platform.rejections.v1`` with codes ``LATE_FOR_ANCHOR`` / ``ANCHOR_CONFLICT``; undecodable messages go to the
dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from edream.kafka import consumer_config, producer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams.anchoring.anchorer import AnchorConflict
from streams.anchoring.merkle import leaf_hash
from streams.anchoring.rejections import rejection
from streams.anchoring.service import AnchoringService
from streams.anchoring.windows import AddResult, WindowGrouper, WindowKey
from streams.deadletter import DEADLETTER_TOPIC, dead_letter

log = logging.getLogger(__name__)

SETTLEMENT_TOPICS = ("settlement.flex.v1", "settlement.market.v1")
RECEIPTS_TOPIC = "chain.anchor.receipts.v1"
REJECTIONS_TOPIC = "platform.rejections.v1"


class ConsumerAgent:
    """A blocking agent with its own ``consumer`` and ``producer`` that works in ``step()`` batches (the anchoring
    and terms agents); an exception from ``step`` (e.g. an unauthorised key) ends :meth:`run`."""

    consumer: Consumer
    producer: Producer

    def step(self) -> object:
        raise NotImplementedError

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        """Loop until ``stop()`` is true."""
        try:
            while not stop():
                self.step()
        finally:
            self.close()

    def close(self) -> None:
        self.producer.flush(30)
        self.consumer.close()


@dataclass
class _Positions:
    """Per (topic, partition): next offset to read, and the first offset of each open window."""

    consumed: dict[tuple[str, int], int] = field(default_factory=dict)
    open_first: dict[WindowKey, dict[tuple[str, int], int]] = field(default_factory=dict)

    def seen(self, key: WindowKey | None, tp: tuple[str, int], offset: int) -> None:
        self.consumed[tp] = offset + 1
        if key is not None:
            firsts = self.open_first.setdefault(key, {})
            firsts[tp] = min(firsts.get(tp, offset), offset)

    def closed(self, key: WindowKey) -> None:
        self.open_first.pop(key, None)

    def commit_points(self) -> list[TopicPartition]:
        out = []
        for tp, nxt in self.consumed.items():
            pending = [f[tp] for f in self.open_first.values() if tp in f]
            out.append(TopicPartition(tp[0], tp[1], min([nxt, *pending])))
        return out


class AnchoringAgent(ConsumerAgent):
    """One consumer-group member. Call :meth:`step` in a loop (or :meth:`run`)."""

    def __init__(
        self,
        settings: Settings,
        service: AnchoringService,
        grouper: WindowGrouper | None = None,
        topics: tuple[str, ...] = SETTLEMENT_TOPICS,
        receipts_topic: str = RECEIPTS_TOPIC,
        rejections_topic: str = REJECTIONS_TOPIC,
        group_id: str | None = None,
        deadletter_topic: str = DEADLETTER_TOPIC,
        wall_clock: Callable[[], int] | None = None,
    ):
        """``wall_clock`` (UTC epoch ms), when given, also closes windows whose end + grace lies in the past
        whenever the consumer is caught up, so a window is anchored even if no later settlement arrives."""
        self.service = service
        self.wall_clock = wall_clock
        self.grouper = grouper or WindowGrouper()
        self.serde = Serde(settings)
        self.receipts_topic, self.rejections_topic = receipts_topic, rejections_topic
        self.deadletter_topic = deadletter_topic
        self.consumer = Consumer(consumer_config(settings, group_id or f"{settings.edream_app_id}-anchoring"))
        self.consumer.subscribe(list(topics))
        self.producer = Producer(producer_config(settings))
        self.positions = _Positions()
        self.receipts: list[dict[str, Any]] = []

    def _produce(self, schema: str, topic: str, key: str, record: dict[str, Any]) -> None:
        self.producer.produce(topic, key=key.encode(), value=self.serde.encode(schema, record, topic))

    def step(self, timeout_s: float = 1.0, max_messages: int = 1000) -> list[dict[str, Any]]:
        """Consume one batch, anchor the windows it closes, publish, commit. Returns the new receipts."""
        msgs = self.consumer.consume(max_messages, timeout_s)
        for msg in msgs:
            if msg.error():
                log.warning("consumer error: %s", msg.error())
                continue
            tp = (msg.topic(), msg.partition())
            try:
                _, record = self.serde.decode(msg.value(), msg.topic())
            except DecodeError as exc:
                dl = dead_letter(
                    msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), "anchoring", exc
                )
                self._produce("DeadLetter", self.deadletter_topic, msg.topic(), dl)
                self.positions.seen(None, tp, msg.offset())
                continue
            result = self.grouper.add(record)
            if result is AddResult.LATE:
                rej = rejection(
                    record, "LATE_FOR_ANCHOR", "settlement arrived after its anchor window closed"
                )
                self._produce("Rejection", self.rejections_topic, record["settlement_id"], rej)
                self.positions.seen(None, tp, msg.offset())
            else:
                self.positions.seen(self.grouper.key_for(record), tp, msg.offset())
        closed = self.grouper.closed()
        if self.wall_clock is not None and len(msgs) < max_messages:  # caught up: the timer path
            closed += self.grouper.flush(until_ms=self.wall_clock() - self.grouper.grace_ms)
        return self._anchor_closed(closed)

    def flush(self, until_ms: int | None = None) -> list[dict[str, Any]]:
        """Anchor open windows now (clock tick or shutdown): all, or those ending at or before ``until_ms``."""
        return self._anchor_closed(self.grouper.flush(until_ms))

    def _anchor_closed(self, batches: list) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for batch in batches:
            try:
                (receipt,) = self.service.anchor([batch])
            except AnchorConflict as exc:
                self._conflict(batch, exc)
            else:
                key = f"{receipt['kind']}:{receipt['window_id']}"  # FLEX and MARKET share window ids
                self._produce("AnchorReceipt", self.receipts_topic, key, receipt)
                new.append(receipt)
            self.positions.closed(batch.key)
        self.producer.flush(30)
        points = self.positions.commit_points()
        if points:
            self.consumer.commit(offsets=points, asynchronous=False)
        self.receipts.extend(new)
        return new

    def _conflict(self, batch: Any, exc: AnchorConflict) -> None:
        """A replay after restart can re-open an anchored window with only some of its records: those already
        in the window's manifest are silently absorbed; the others really changed or came late."""
        anchored = set(self.service.store.manifest(batch.key.kind, batch.key.window_id).values())
        for r in batch.records:
            if leaf_hash(r) in anchored:
                continue
            log.error("%s: settlement %s not in the anchored window", exc, r["settlement_id"])
            self._produce(
                "Rejection",
                self.rejections_topic,
                r["settlement_id"],
                rejection(r, "ANCHOR_CONFLICT", str(exc)),
            )
