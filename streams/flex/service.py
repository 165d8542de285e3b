"""Thin Kafka wiring of the :class:`~streams.flex.desk.FlexDesk` for :class:`~streams.stateful_loop.StatefulLoop`.

Inputs: ``flex.enrolments.v1`` (FlexEnrolment, compacted registry, re-read from the beginning on every start),
``flex.dsos.v1`` (FlexDso, compacted DSO registry, re-read likewise), ``flex.requests.v1`` (FlexRequest, signed by
the DSO: see :mod:`streams.flex.authentication`), ``meter.readings.raw.v1`` (Measurement: ``P_ACTIVE``/``TOTAL`` in W or kW
with ``prosumer_id`` set; everything else is ignored), ``baseline.15m.v1`` (Baseline) and ``forecast.profiles.v1``
(Forecast), the last three also feeding the :class:`~streams.flex.outlook.OutlookBook`. Outputs: offers, orders
(incl. amended revisions), deviations, settlements, rejections and device commands, Avro-encoded.

Timers: the hosting loop calls :meth:`FlexStream.tick` with the wall clock once the backlog is consumed, so slots
close and set-points go out even when no reading arrives. DSO requests are queued and offered on the next tick, so
an offer never misses readings, baselines or forecasts that were already on the topics. State (registry, requests, offers, orders, verification,
outlook, command planner) is pickled by the loop after every batch, before offsets are committed; every output
carries a deterministic id, so a replay after a crash re-emits identical records that idempotent sinks collapse.

Undecodable input, and readings outside the Measurement contract (:mod:`streams.validation.measurement`: NaN,
event time more than the clock skew ahead of the wall clock, absurd ids or units), go to the dead-letter topic
with the reason before they touch any state; an enrolment with bad or unbounded values
(:func:`streams.validation.flex.check_enrolment`) or a terms hash that does not match gets a ``Rejection``
(INVALID_ENROLMENT) and changes nothing; a request outside its bounds gets a ``Rejection`` at submission. DSO acceptance: no acceptance event
exists yet, so ``auto_accept`` (default on) accepts every feasible offer at once, standing in for the DSO.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams import snapshots
from streams.deadletter import DEADLETTER_TOPIC
from streams.flex.desk import (
    TOPIC_COMMANDS,
    TOPIC_DEVIATIONS,
    TOPIC_OFFERS,
    TOPIC_ORDERS,
    TOPIC_REJECTIONS,
    TOPIC_REQUESTS,
    TOPIC_SETTLEMENTS,
    FlexDesk,
    out_of,
)
from streams.flex.dsos import TOPIC_DSOS, DsoRegistryError, dso_from_record
from streams.flex.enrolment import EnrolmentError, record_from_event
from streams.flex.outlook import OutlookBook
from streams.flex.requests import FlexRequest, to_ms
from streams.flex.validation import Code, Issue, rejection
from streams.outputs import Emit, Out, encode_outs
from streams.stateful_loop import LoopConfig, StatefulLoop
from streams.validation.fields import InvalidRecord, describe
from streams.validation.flex import check_enrolment
from streams.validation.measurement import check_measurement

log = logging.getLogger(__name__)
TOPIC_READINGS = "meter.readings.raw.v1"
TOPIC_ENROLMENTS = "flex.enrolments.v1"  # compacted prosumer registry (FlexEnrolment.avsc)
TOPIC_BASELINES = "baseline.15m.v1"
TOPIC_FORECASTS = "forecast.profiles.v1"
INPUT_TOPICS = (
    TOPIC_ENROLMENTS,
    TOPIC_DSOS,
    TOPIC_REQUESTS,
    TOPIC_READINGS,
    TOPIC_BASELINES,
    TOPIC_FORECASTS,
)
#: Timers run while at most this many messages per partition are unread: 5-s readings keep arriving between
#: every fetch and the caught-up check, so a strict check would never let requests be offered or slots close.
CAUGHT_UP_SLACK = 500


@dataclass
class FlexTopics:
    """Actual topic names (tests use unique ones); each field's default is the canonical name."""

    enrolments: str = TOPIC_ENROLMENTS
    dsos: str = TOPIC_DSOS
    requests: str = TOPIC_REQUESTS
    readings: str = TOPIC_READINGS
    baselines: str = TOPIC_BASELINES
    forecasts: str = TOPIC_FORECASTS
    offers: str = TOPIC_OFFERS
    orders: str = TOPIC_ORDERS
    deviations: str = TOPIC_DEVIATIONS
    settlements: str = TOPIC_SETTLEMENTS
    rejections: str = TOPIC_REJECTIONS
    commands: str = TOPIC_COMMANDS
    deadletter: str = DEADLETTER_TOPIC

    def mapping(self) -> dict[str, str]:
        """Canonical name -> actual name."""
        return {f.default: getattr(self, f.name) for f in fields(self)}  # type: ignore[misc]

    @property
    def inputs(self) -> list[str]:
        return [self.mapping()[t] for t in INPUT_TOPICS]


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


class FlexStream:
    """The :class:`~streams.stateful_loop.Processor` of the flex agent (see module doc).

    ``clock`` gives the "now" that requests and acceptances are validated against (UTC epoch ms)."""

    def __init__(
        self,
        serde: Serde,
        desk: FlexDesk,
        topics: Mapping[str, str] | None = None,
        auto_accept: bool = True,
        clock: Callable[[], int] = wall_clock_ms,
    ):
        self.serde, self.desk, self.auto_accept, self.clock = serde, desk, auto_accept, clock
        self.topics = dict(topics or {})
        self.emitted: dict[str, int] = {}

    @property
    def book(self) -> OutlookBook | None:
        return self.desk.outlook if isinstance(self.desk.outlook, OutlookBook) else None

    def handle(self, topic: str, key: bytes | None, value: bytes, timestamp_ms: int) -> list[Emit]:
        """Raises DecodeError for undecodable bytes and :class:`InvalidRecord` for a reading outside its contract
        (the loop dead-letters both with the reason); an invalid enrolment becomes a Rejection."""
        name, rec = self.serde.decode(value, topic)
        desk = self.desk
        if name == "FlexEnrolment":
            try:
                record = record_from_event(rec)
                if errors := check_enrolment(record):
                    raise EnrolmentError(describe(errors))
            except EnrolmentError as exc:
                issue = Issue(Code.INVALID_ENROLMENT, str(exc))
                rej = rejection("FlexEnrolment", rec.get("prosumer_id", ""), [issue], self.clock())
                return self._encode([out_of(rej)])
            desk.registry.upsert(record)
            return []
        if name == "FlexDso":
            try:
                desk.dsos.upsert(dso_from_record(rec))
            except DsoRegistryError as exc:  # a malformed registry record: dead-lettered with the reason
                raise DecodeError(str(exc)) from None
            return []
        if name == "FlexRequest":
            desk.pending_requests.append(FlexRequest.from_avro(rec))  # offered on the next tick (caught up)
            return []
        if name == "Measurement" and (kw := net_power_kw(rec)) is not None:
            # validated before it reaches the outlook, the verification watermark or the command timer
            if errors := check_measurement(rec, now_ms=self.clock()):
                raise InvalidRecord("Measurement", errors)
            ts = to_ms(rec["ts"])
            if self.book is not None:
                self.book.on_reading(rec["prosumer_id"], ts, kw)
            return self._encode(desk.on_reading(rec["prosumer_id"], ts, kw))
        if name == "Baseline" and self.book is not None:
            self.book.on_baseline(rec)
        elif name == "Forecast" and self.book is not None:
            self.book.on_forecast(rec)
        return []

    def tick(self, now_ms: int) -> list[Emit]:
        """Offers for the requests that arrived, then the desk's timers. Requests wait for the tick because the
        loop only ticks once every input is consumed: the offer then sees every reading, baseline and forecast
        already on the topics (after a restart or a backlog, topics are not read in arrival order)."""
        desk, outs = self.desk, []
        while desk.pending_requests:
            offers = desk.submit(desk.pending_requests.pop(0), self.clock())
            outs.extend(offers)
            if self.auto_accept:
                for o in offers:
                    if o.schema == "FlexOffer" and o.record["status"] != "INFEASIBLE":
                        outs.extend(desk.accept(o.record["offer_id"], self.clock()))
        return self._encode(outs + desk.on_timer(now_ms))

    def _encode(self, outs: list[Out]) -> list[Emit]:
        for o in outs:
            self.emitted[o.schema] = self.emitted.get(o.schema, 0) + 1
        return encode_outs(self.serde, self.topics, outs)

    def snapshot(self) -> bytes:
        return snapshots.dump(self.desk)

    @staticmethod
    def restore_desk(blob: bytes) -> FlexDesk:
        return snapshots.load(blob, FlexDesk)


def loop_config(
    settings: Settings,
    bootstrap: str,
    group_id: str,
    topics: FlexTopics,
    state_file: Path,
    **consumer_overrides: object,
) -> LoopConfig:
    return LoopConfig(
        settings=settings,
        bootstrap=bootstrap,
        group_id=group_id,
        inputs=topics.inputs,
        state_file=state_file,
        replay_from_start=(topics.enrolments, topics.dsos),
        consumer_overrides=dict(consumer_overrides),
        deadletter_topic=topics.deadletter,
        caught_up_slack=CAUGHT_UP_SLACK,
    )


class FlexService:
    """A :class:`FlexStream` on its own :class:`StatefulLoop` (``edream flex serve`` and tests); inside
    ``edream run`` the worker hosts the same pair (:mod:`streams.agents.flex`). A snapshot in ``state_file``
    replaces ``desk`` on start."""

    def __init__(
        self,
        desk: FlexDesk,
        settings: Settings,
        bootstrap: str,
        topics: FlexTopics | None = None,
        *,
        group_id: str = "edream-flex",
        state_file: Path,
        auto_accept: bool = True,
        clock: Callable[[], int] = wall_clock_ms,
        consumer_overrides: Mapping[str, object] | None = None,
    ):
        self.topics = topics or FlexTopics()
        self.group_id = group_id
        serde = Serde(settings)
        cfg = loop_config(
            settings, bootstrap, group_id, self.topics, state_file, **dict(consumer_overrides or {})
        )

        def make(blob: bytes | None) -> FlexStream:
            d = FlexStream.restore_desk(blob) if blob else desk
            return FlexStream(serde, d, self.topics.mapping(), auto_accept, clock)

        self.loop = StatefulLoop(cfg, make, clock=clock)
        self.stream: FlexStream = self.loop.processor  # type: ignore[assignment]

    @property
    def desk(self) -> FlexDesk:
        return self.stream.desk

    @property
    def handled(self) -> int:
        return self.loop.handled

    @property
    def emitted(self) -> dict[str, int]:
        return self.stream.emitted

    def run(self, stop: threading.Event) -> None:
        """Step the loop until ``stop`` is set."""
        try:
            while not stop.is_set():
                self.loop.step(timeout_s=0.05)
        finally:
            self.loop.close()
