"""The VTN: openleadr's ``OpenADRServer`` for the VENs of :mod:`~connectors.openadr.config`, wired to Kafka.

- Registration: a VEN registers by its configured ``ven_name`` and gets its configured ``ven_id``; an unknown name
  (or, over TLS, another certificate than the configured fingerprint) is refused and becomes a Rejection event
  (``OpenAdrRegistration``, UNKNOWN_VEN / FINGERPRINT_MISMATCH).
- Orders -> events: ``flex.orders.v1`` is read from its start on every start (no consumer group: the events a VEN
  should see are rebuilt from the topic, so a restarted VTN serves them again; ended slots are dropped), each record
  checked like every order consumer does (:func:`~streams.validation.flex_order.check_flex_order`; a bad one is a
  dead letter) and planned by :func:`~connectors.openadr.events.plan_order`. Events are handed to the server's event
  loop; VENs get them on their next poll.
- VPP dispatch -> events: when a VEN's site hosts VPP assets (``vpp_assets``), ``vpp.capability.v1`` is read the
  same way and the generators' set points planned by :func:`~connectors.openadr.vpp_events.plan_dispatch`
  (``LOAD_DISPATCH`` setpoint events).
- Opt-in/out -> ``DrEventResponse`` on ``flex.dr.responses.v1``, flushed before the VEN gets its answer.
- Telemetry: of each TELEMETRY_USAGE report the VEN offers we request the real-power descriptions, sampled every
  ``report_seconds`` (within what the VEN allows); each value becomes a Measurement, validated by
  :func:`~streams.validation.measurement.check_measurement` (event time against the wall clock, ranges, ids) and
  published to ``meter.readings.raw.v1`` before the VEN gets its oadrUpdatedReport, or a dead letter with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from openleadr import OpenADRServer, objects
from openleadr.service.vtn_service import VTNService

from connectors.openadr.config import Ven, VtnConfig
from connectors.openadr.events import SIGNAL_NAME, DispatchEvent, OrderPlan, plan_order
from connectors.openadr.responses import RESPONSES_TOPIC, dr_event_response
from connectors.openadr.telemetry import to_measurements, wants_report
from connectors.openadr.vpp_events import plan_dispatch
from edream.deadletter import DEADLETTER_TOPIC, dead_letter
from edream.serde import Serde
from streams.flex.validation import Rejection
from streams.outputs import Out, encode_outs
from streams.validation.fields import describe
from streams.validation.flex_order import check_flex_order
from streams.validation.measurement import check_measurement

log = logging.getLogger(__name__)
ORDERS_TOPIC = "flex.orders.v1"
VPP_TOPIC = "vpp.capability.v1"
READINGS_TOPIC = "meter.readings.raw.v1"
STAGE = "openadr-vtn"


def registration_id(ven_id: str) -> str:
    """The registration id of a configured VEN: fixed, so a restarted VTN still knows its VENs."""
    return f"reg-{ven_id}"


class OpenAdrVtn:
    """See module doc. ``client_conf``: confluent-kafka settings (``bootstrap.servers``, security); ``topics``:
    canonical -> topology names; ``now``: wall clock, UTC epoch ms; ``connector_id``: of the readings."""

    def __init__(
        self,
        config: VtnConfig,
        client_conf: Mapping[str, Any],
        serde: Serde,
        topics: Mapping[str, str],
        now: Callable[[], int],
        connector_id: str = "openadr-vtn",
    ):
        self.config, self.serde, self.topics, self.now = config, serde, dict(topics), now
        self.connector_id = connector_id
        vtn, tls = config.vtn, config.vtn.tls
        self.server = OpenADRServer(
            vtn_id=vtn.vtn_id,
            http_host=vtn.host,
            http_port=vtn.port,
            requested_poll_freq=timedelta(seconds=vtn.poll_seconds),
            ven_lookup=self._ven_lookup,
            cert=str(tls.cert) if tls else None,
            key=str(tls.key) if tls else None,
            http_cert=str(tls.cert) if tls else None,
            http_key=str(tls.key) if tls else None,
            http_ca_file=str(tls.ca_file) if tls else None,
            show_fingerprint=False,
        )
        self.server.add_handler("on_create_party_registration", self._on_registration)
        self.server.add_handler("on_register_report", self._on_register_report)
        self.producer = Producer({**client_conf, "linger.ms": 5})
        self._consumer_conf = {**client_conf, "group.id": "edream-openadr-vtn", "enable.auto.commit": False}
        self._events: dict[str, DispatchEvent] = {}  # DR event id -> event (served or cancelled)
        self._current: dict[tuple[str, str], str] = {}  # (order_id, prosumer_id) -> its latest DR event id
        self._stop = threading.Event()
        self._orders_thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- Kafka out ---------------------------------------------------------------------------------------------
    async def _publish(self, outs: list[Out]) -> None:
        """Produce and flush off the event loop (the VEN is answered only once its message is on Kafka)."""
        for topic, key, value in encode_outs(self.serde, self.topics, outs):
            self.producer.produce(topic, value, key=key)
        left = await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, 30)
        if left:
            raise RuntimeError("Kafka did not take the VTN's records within 30 s")

    # -- registration ------------------------------------------------------------------------------------------
    def _ven_lookup(self, ven_id: str) -> dict[str, Any] | None:
        ven = self.config.by_id(ven_id)
        if ven is None:
            return None
        return {
            "ven_id": ven.ven_id,
            "ven_name": ven.ven_name,
            "fingerprint": ven.fingerprint,
            "registration_id": registration_id(ven.ven_id),
        }

    async def _on_registration(self, info: dict[str, Any]) -> tuple[str, str] | bool:
        name = str(info.get("ven_name") or "")
        ven = self.config.by_name(name)
        code = None
        if ven is None:
            code, reason = "UNKNOWN_VEN", f"VEN name {name[:128]!r} is not configured"
        elif self.config.vtn.tls is not None and info.get("fingerprint") != ven.fingerprint:
            code, reason = (
                "FINGERPRINT_MISMATCH",
                f"client certificate is not the one configured for {ven.ven_id}",
            )
        if code is not None:
            rej = Rejection(
                "OpenAdrRegistration", name[:128] or "-", code, reason, self.now(), name[:128] or None
            )
            await self._publish([Out("platform.rejections.v1", "Rejection", rej.subject_id, rej.to_avro())])
            log.warning("openadr vtn: registration refused: %s", reason)
            return False
        log.info("openadr vtn: %s registered as %s (prosumer %s)", name, ven.ven_id, ven.prosumer_id)
        return ven.ven_id, registration_id(ven.ven_id)

    # -- telemetry ---------------------------------------------------------------------------------------------
    async def _on_register_report(
        self, ven_id, resource_id, measurement, unit, scale, min_sampling_interval, max_sampling_interval
    ):
        ven = self.config.by_id(ven_id)
        if ven is None or not wants_report(measurement, unit, scale):
            return None
        want = timedelta(seconds=self.config.vtn.report_seconds)
        interval = min(max(want, min_sampling_interval or want), max_sampling_interval or want)
        return functools.partial(self._on_report, ven, resource_id, scale), interval

    async def _on_report(
        self, ven: Ven, resource_id: str, scale: str | None, values: list[tuple[datetime, Any]]
    ):
        now = self.now()
        outs = []
        for rec in to_measurements(ven, self.connector_id, resource_id, scale, values, now):
            errors = check_measurement(rec, now)
            if errors:
                letter = dead_letter(
                    "openadr", -1, -1, rec["device_id"].encode(), json.dumps(rec).encode(), STAGE,
                    describe(errors), errors[0].code, failed_at=now,
                )  # fmt: skip
                outs.append(Out(DEADLETTER_TOPIC, "DeadLetter", "openadr", letter))
            else:
                outs.append(Out(READINGS_TOPIC, "Measurement", rec["device_id"], rec))
        await self._publish(outs)

    # -- orders -> events --------------------------------------------------------------------------------------
    def apply(self, plan: OrderPlan) -> None:
        """Serve a plan's events (replacing earlier revisions) and cancel what it cancels; on the event loop."""
        for key in plan.cancel:
            self._cancel(key)
        for event in plan.add:
            served = self._events.get(self._current.get(event.key, ""))
            if event.event_id in self._events or (served is not None and served.revision > event.revision):
                continue  # the same order read again, or an older revision than the one served
            self._cancel(event.key)
            self._serve(event)

    def _cancel(self, key: tuple[str, str]) -> None:
        event_id = self._current.pop(key, None)
        ven = self.config.by_prosumer(key[1])
        if event_id is not None and ven is not None:
            self.server.cancel_event(ven.ven_id, event_id)

    def _serve(self, event: DispatchEvent) -> None:
        ven = self.config.by_prosumer(event.prosumer_id)
        assert ven is not None  # plan_order only plans for configured prosumers
        intervals = [
            objects.Interval(
                dtstart=datetime.fromtimestamp(i.start_ms / 1000, UTC),
                duration=timedelta(minutes=i.minutes),
                signal_payload=round(i.kw, 6),
                uid=n,
            )
            for n, i in enumerate(event.intervals)
        ]
        signal = objects.EventSignal(
            intervals=intervals,
            signal_name=SIGNAL_NAME,
            signal_type=event.signal_type,
            signal_id=f"{event.event_id}~s0",
            measurement=objects.Measurement(
                name="powerReal",
                description="RealPower",
                unit="W",
                scale="k",
                power_attributes=objects.PowerAttributes(hertz=50, voltage=230, ac=True),
            ),
        )
        first = intervals[0].dtstart
        raw = objects.Event(
            event_descriptor=objects.EventDescriptor(
                event_id=event.event_id,
                modification_number=0,
                market_context=self.config.vtn.market_context,
                event_status="far",
                created_date_time=datetime.now(UTC),
            ),
            active_period=objects.ActivePeriod(
                dtstart=first, duration=intervals[-1].dtstart + intervals[-1].duration - first
            ),
            event_signals=[signal],
            targets=[objects.Target(ven_id=ven.ven_id)],
            response_required="always",
        )
        self._events[event.event_id] = event
        self._current[event.key] = event.event_id
        self.server.add_raw_event(ven.ven_id, raw, callback=self._on_opt)
        log.info("openadr vtn: event %s for %s (%d intervals)", event.event_id, ven.ven_id, len(intervals))

    async def _on_opt(self, ven_id: str, event_id: str, opt_type: str) -> None:
        event = self._events.get(event_id)
        if event is None:
            return
        rec = dr_event_response(event, ven_id, opt_type, self.now())
        await self._publish([Out(RESPONSES_TOPIC, "DrEventResponse", event.order_id, rec)])

    def _follow_orders(self) -> None:
        """Flex orders and, when a VEN hosts VPP assets, the VPP's dispatch, each read from its start."""
        consumer = Consumer(self._consumer_conf)
        names = [ORDERS_TOPIC] + ([VPP_TOPIC] if self.config.asset_sites() else [])
        try:
            assigned = []
            for name in (self.topics.get(n, n) for n in names):
                parts = consumer.list_topics(name, timeout=10).topics[name].partitions
                assigned += [TopicPartition(name, p, OFFSET_BEGINNING) for p in parts]
            consumer.assign(assigned)
            prosumers = [v.prosumer_id for v in self.config.vens]
            while not self._stop.is_set():
                for m in consumer.consume(500, 0.2):
                    if m.error():
                        continue
                    plan = self._plan(m, prosumers)
                    if plan is not None and (plan.add or plan.cancel):
                        assert self.loop is not None
                        self.loop.call_soon_threadsafe(self.apply, plan)
        finally:
            consumer.close()

    def _plan(self, m: Any, prosumers: list[str]) -> OrderPlan | None:
        """A consumed order's or VPP dispatch's plan, or None after dead-lettering what cannot be read or is
        invalid."""
        try:
            _, rec = self.serde.decode(m.value(), m.topic())
            if m.topic() == self.topics.get(VPP_TOPIC, VPP_TOPIC):
                return plan_dispatch(rec, self.config.asset_sites(), self.now())
            errors = check_flex_order(rec, None)
            if errors:
                raise ValueError(describe(errors))
            return plan_order(rec, prosumers, self.now())
        except Exception as exc:  # noqa: BLE001 - one bad order must not stop the VTN
            letter = dead_letter(
                m.topic(), m.partition(), m.offset(), m.key(), m.value(), STAGE, exc, failed_at=self.now()
            )
            for topic, key, value in encode_outs(
                self.serde, self.topics, [Out(DEADLETTER_TOPIC, "DeadLetter", m.topic(), letter)]
            ):
                self.producer.produce(topic, value, key=key)
            self.producer.flush(30)
            return None

    # -- running -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve HTTP and follow the orders (in a thread); in the running event loop."""
        self.loop = asyncio.get_running_loop()
        await self.server.run()
        self._orders_thread = threading.Thread(target=self._follow_orders, daemon=True, name="openadr-orders")
        self._orders_thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._orders_thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._orders_thread.join, 10)
        await self.server.stop()
        self.producer.flush(10)
        self.release_library_state()

    @staticmethod
    def release_library_state() -> None:
        """openleadr keeps the VEN lookup on its VTNService class (one VTN per process): ours goes with us, so a
        server made later in this process does not look its VENs up in our registry."""
        if VTNService.__dict__.get("ven_lookup") is not None:
            delattr(VTNService, "ven_lookup")
