"""Stream processor of the P2P market for :class:`~streams.stateful_loop.StatefulLoop`.

Inputs: ``market.participants.v1`` (registry), ``market.orders.v1`` (signed orders; the event time of an order
is its message timestamp, i.e. the broker's arrival time, never the client's clock) and
``meter.intervals.15m.v1`` (metering for settlement). Timer ticks come from the hosting worker's clock once the
consumer is caught up, so gates close on time even when no order arrives. Outputs are
:class:`~streams.market.processor.MarketProcessor`'s events, routed to the topology's topic names.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from edream.serde import DecodeError, Serde
from streams import snapshots
from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder
from streams.market.participants import Participant
from streams.market.processor import MarketProcessor
from streams.outputs import Emit, Out, encode_outs

log = logging.getLogger(__name__)
INPUT_TOPICS = ("market.participants.v1", "market.orders.v1", "meter.intervals.15m.v1")


class MarketStream:
    def __init__(
        self, serde: Serde, processor: MarketProcessor | None = None, topics: Mapping[str, str] | None = None
    ):
        self.serde = serde
        self.processor = processor or MarketProcessor(MarketConfig())
        self.topics = dict(topics or {})

    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]:
        try:
            name, rec = self.serde.decode(value, topic)
        except DecodeError as exc:
            log.warning("market: skipping undecodable message on %s: %s", topic, exc)
            return []
        proc = self.processor
        if name == "MarketParticipant":
            proc.on_participant(Participant.from_avro(rec))
            return []
        if name == "MarketOrder":
            return self._encode(proc.on_order(MarketOrder.from_avro(rec), timestamp_ms))
        if name == "IntervalEnergy":
            return self._encode(proc.on_interval(rec, timestamp_ms))
        return []

    def tick(self, now_ms: int) -> list[Emit]:
        return self._encode(self.processor.on_tick(now_ms))

    def _encode(self, outs: list[Out]) -> list[Emit]:
        return encode_outs(self.serde, self.topics, outs)

    def snapshot(self) -> bytes:
        return snapshots.dump(self.processor)

    @classmethod
    def restore(cls, serde: Serde, blob: bytes, topics: Mapping[str, str] | None = None) -> MarketStream:
        return cls(serde, snapshots.load(blob, MarketProcessor), topics)
