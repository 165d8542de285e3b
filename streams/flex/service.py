"""Thin Kafka wiring of the :class:`~streams.flex.desk.FlexDesk` (confluent-kafka, at-least-once).

Inputs: ``flex.enrolments.v1`` (FlexEnrolment, compacted registry), ``flex.requests.v1`` (FlexRequest) and ``meter.readings.raw.v1`` (Measurement: ``P_ACTIVE``/``TOTAL`` in
W with ``prosumer_id`` set; everything else is ignored). Outputs: offers, orders (incl. amended revisions),
deviations, settlements and rejections, Avro-encoded with :class:`edream.serde.Serde`. Offsets are committed
only after the outputs they caused are flushed; every output carries a deterministic id, so a replay after a
crash re-emits identical records that idempotent sinks collapse.

Undecodable input is skipped with a warning (the platform's dead-letter agent owns DLQ routing).
DSO acceptance: no acceptance event exists yet, so ``auto_accept`` (default on) accepts every feasible offer
at once, standing in for the DSO.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer

from edream.kafka import consumer_config, producer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams.flex.desk import (
    TOPIC_DEVIATIONS,
    TOPIC_OFFERS,
    TOPIC_ORDERS,
    TOPIC_REJECTIONS,
    TOPIC_REQUESTS,
    TOPIC_SETTLEMENTS,
    FlexDesk,
    Out,
)
from streams.flex.enrolment import EnrolmentError, record_from_event
from streams.flex.requests import FlexRequest, to_ms

log = logging.getLogger(__name__)
TOPIC_READINGS = "meter.readings.raw.v1"
TOPIC_ENROLMENTS = "flex.enrolments.v1"  # compacted prosumer registry (FlexEnrolment.avsc)


@dataclass
class FlexTopics:
    enrolments: str = TOPIC_ENROLMENTS
    requests: str = TOPIC_REQUESTS
    readings: str = TOPIC_READINGS
    offers: str = TOPIC_OFFERS
    orders: str = TOPIC_ORDERS
    deviations: str = TOPIC_DEVIATIONS
    settlements: str = TOPIC_SETTLEMENTS
    rejections: str = TOPIC_REJECTIONS

    def route(self, default_topic: str) -> str:
        """Map the desk's canonical topic names onto these (tests use unique topic names)."""
        return {
            TOPIC_OFFERS: self.offers,
            TOPIC_ORDERS: self.orders,
            TOPIC_DEVIATIONS: self.deviations,
            TOPIC_SETTLEMENTS: self.settlements,
            TOPIC_REJECTIONS: self.rejections,
        }[default_topic]


def net_power_kw(rec: dict) -> float | None:
    """Prosumer net active power, kW, from a Measurement record (None if it is not one)."""
    if (
        rec.get("quantity") != "P_ACTIVE"
        or rec.get("phase", "TOTAL") != "TOTAL"
        or not rec.get("prosumer_id")
    ):
        return None
    value, unit = rec.get("value"), rec.get("unit")
    if value is None or unit not in ("W", "kW"):
        return None
    return value / 1000.0 if unit == "W" else float(value)


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class FlexService:
    desk: FlexDesk
    settings: Settings
    bootstrap: str
    topics: FlexTopics = field(default_factory=FlexTopics)
    group_id: str = "edream-flex"
    auto_accept: bool = True
    clock: Callable[[], int] = wall_clock_ms
    commit_every: int = 2000
    consumer_overrides: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.serde = Serde(self.settings)
        self.producer = Producer(producer_config(self.settings, self.bootstrap, **{"linger.ms": 5}))
        self.consumer = Consumer(
            consumer_config(self.settings, self.group_id, self.bootstrap, **self.consumer_overrides)
        )
        self.handled = 0  # input messages fully processed (outputs handed to the producer)
        self.emitted: dict[str, int] = {}
        self._since_commit = 0

    def _emit(self, outs: list[Out]) -> None:
        for o in outs:
            topic = self.topics.route(o.topic)
            self.producer.produce(topic, self.serde.encode(o.schema, o.record, topic), key=o.key.encode())
            self.emitted[o.schema] = self.emitted.get(o.schema, 0) + 1
        self.producer.poll(0)

    def handle(self, topic: str, value: bytes | None) -> None:
        try:
            name, rec = self.serde.decode(value, topic)
        except DecodeError as exc:
            log.warning("flex: skipping undecodable message on %s: %s", topic, exc)
            return
        if name == "FlexEnrolment":
            try:
                self.desk.registry.upsert(record_from_event(rec))
            except EnrolmentError as exc:
                log.warning("flex: ignoring enrolment %s: %s", rec.get("prosumer_id"), exc)
        elif name == "FlexRequest":
            outs = self.desk.submit(FlexRequest.from_avro(rec), self.clock())
            self._emit(outs)
            if self.auto_accept:
                for o in outs:
                    if o.schema == "FlexOffer" and o.record["status"] != "INFEASIBLE":
                        self._emit(self.desk.accept(o.record["offer_id"], self.clock()))
        elif name == "Measurement" and (kw := net_power_kw(rec)) is not None:
            self._emit(self.desk.on_reading(rec["prosumer_id"], to_ms(rec["ts"]), kw))

    def _commit(self) -> None:
        self.producer.flush()
        self.consumer.commit(asynchronous=False)
        self._since_commit = 0

    def _on_assign(self, consumer: Consumer, partitions: list) -> None:
        """The registry is a compacted table: re-read it from the beginning on every (re)start."""
        for tp in partitions:
            if tp.topic == self.topics.enrolments:
                tp.offset = OFFSET_BEGINNING
        consumer.assign(partitions)

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; flush and commit when idle or every ``commit_every`` messages."""
        self.consumer.subscribe(
            [self.topics.enrolments, self.topics.requests, self.topics.readings], on_assign=self._on_assign
        )
        try:
            while not stop.is_set():
                msg = self.consumer.poll(0.05)
                if msg is None:
                    if self._since_commit:
                        self._commit()
                    continue
                if msg.error():
                    log.warning("flex: consumer error %s", msg.error())
                    continue
                self.handle(msg.topic(), msg.value())
                self.handled += 1
                self._since_commit += 1
                if self._since_commit >= self.commit_every:
                    self._commit()
        finally:
            if self._since_commit:
                self._commit()
            self.consumer.close()
