"""The market as a runtime stage (:class:`~edream.runtime.contract.StageProcessor`): bytes in, bytes out.

Inputs: ``market.orders.v1`` re-keyed by session id (:func:`order_session_keys`; the event time of an order is
its message timestamp, i.e. the broker's arrival time, never the client's clock) and ``meter.intervals.15m.v1``
re-keyed to the session of the slot each interval settles (:func:`interval_session_keys`), so a session's orders
and delivery data share one partition and its state. ``market.participants.v1`` is a registry view
(:class:`~streams.market.participants.ParticipantView`). Ticks of the wall clock close gates when no order comes.
Outputs are :class:`~streams.market.processor.MarketProcessor`'s events, routed to the topology's topic names.

A record that cannot be read (undecodable, another contract, an order under a key that is not its session,
an interval out of bounds) raises, so the runtime dead-letters it with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import DecodeError, Serde
from streams.market.config import MarketConfig
from streams.market.market_order import MarketOrder
from streams.market.processor import MarketProcessor
from streams.outputs import Out, encode_outs

ORDERS_TOPIC = "market.orders.v1"
INTERVALS_TOPIC = "meter.intervals.15m.v1"
PARTICIPANTS_TOPIC = "market.participants.v1"


def order_session_keys(serde: Serde, _key: bytes | None, value: bytes) -> list[bytes]:
    """Re-key of a ``MarketOrder`` record: its ``session_id``. The orders topic is keyed by session id already,
    but its producers partition with librdkafka's default (CRC32) while the runtime's repartition topics use
    murmur2: both inputs go through the runtime's partitioner so a session's orders and intervals meet."""
    name, rec = serde.decode(value)
    if name != "MarketOrder":
        raise DecodeError(f"expected MarketOrder, got {name}")
    return [rec["session_id"].encode()]


def interval_session_keys(
    config: MarketConfig, serde: Serde, _key: bytes | None, value: bytes
) -> list[bytes]:
    """Re-key of an ``IntervalEnergy`` record (keyed by prosumer): the session of the slot holding its start."""
    name, rec = serde.decode(value)
    if name != "IntervalEnergy":
        raise DecodeError(f"expected IntervalEnergy, got {name}")
    start = rec["interval_start"]
    return [config.session_id(config.slot_of(start)).encode()]


class MarketStage:
    """``topics``: canonical -> loaded topic names (:func:`edream.topology.topic_names`)."""

    def __init__(self, processor: MarketProcessor, serde: Serde, topics: Mapping[str, str]):
        self.processor, self.serde, self.topics = processor, serde, dict(topics)
        self.orders_topic = self.topics.get(ORDERS_TOPIC, ORDERS_TOPIC)
        self.intervals_topic = self.topics.get(INTERVALS_TOPIC, INTERVALS_TOPIC)

    def on_record(self, record: Record, state: KeyValueState) -> Iterable[Emit]:
        name, rec = self.serde.decode(record.value, record.topic)
        if record.topic == self.orders_topic:
            if name != "MarketOrder":
                raise DecodeError(f"expected MarketOrder, got {name}")
            order = MarketOrder.from_avro(rec)
            if record.key != order.session_id.encode():
                raise DecodeError(
                    f"message key {record.key!r} is not the order's session_id {order.session_id!r}"
                )
            return self._encode(self.processor.on_order(order, record.timestamp_ms, state))
        if record.topic == self.intervals_topic:
            if name != "IntervalEnergy":
                raise DecodeError(f"expected IntervalEnergy, got {name}")
            return self._encode(self.processor.on_interval(rec, record.timestamp_ms, state))
        raise DecodeError(f"not an input of the market: {record.topic}")

    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> Iterable[Emit]:
        return self._encode(self.processor.on_tick(now_ms, state))

    def _encode(self, outs: list[Out]) -> list[Emit]:
        return [Emit(t, k, v) for t, k, v in encode_outs(self.serde, self.topics, outs)]
