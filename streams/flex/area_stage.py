"""The per-area half of the flex desk on the stream runtime (stage ``flex``): DSO requests -> offers -> orders,
re-dispatch of projected shortfalls, and each order revision cut into per-prosumer allocations for the
per-prosumer stage (:mod:`streams.flex.prosumer_stage`).

A congestion area is the unit of a DSO request, of its offer (the optimiser picks among the area's prosumers) and
of re-dispatch (the area's other prosumers cover a deviator's shortfall), so the state key is ``area_id``. Inputs,
all keyed (or re-keyed by :mod:`streams.agents.flex`) by area:

* ``flex.requests.v1``: decoded (undecodable: dead letter) and queued in ``pending`` with its record time; offered
  on the partition's next tick, so the offer sees the baselines, forecasts and statuses already consumed. Then, as
  of the request's arrival (:func:`~streams.flex.decisions.decision_time`: its record time, or the wall clock when
  that is not plausible or delivery has started meanwhile): authentication with the DSO registry view
  ``flex.dsos.v1``, bounds and business rules, offer (:mod:`streams.flex.decisions`), valid until its
  ``valid_until``;
* ``flex.acceptances.v1`` (re-keyed by area): the DSO's signed answer to an offer, checked as of when it reached
  the platform (its record time, at most ``acceptance_grace_ms`` before the wall clock;
  :mod:`streams.flex.dso_acceptance`): ACCEPTED orders the accepted part of the offer (prosumers are ordered only
  now), REJECTED closes the offer, a refused acceptance is a Rejection and dispatches nothing. An offer still open
  ``acceptance_grace_ms`` after its ``valid_until`` expires on the next tick (Rejection OFFER_EXPIRED). With
  ``auto_accept`` (a demo setting, ``FLEX_AUTO_ACCEPT``) every feasible offer is ordered at once instead, standing
  in for the DSO;
* ``baseline.15m.v1``, ``forecast.profiles.v1`` (re-keyed to the prosumer's area through the enrolment view) and
  ``flex.prosumer.status.v1`` (metered kW, delivery so far): the per-prosumer outlook summaries of
  :mod:`streams.flex.area_outlook`;
* ``flex.deviations.v1`` (only PROJECTED SHORTFALL verdicts pass the re-key): queued in ``shortfalls``, and on the
  partition's next tick re-dispatched together, one amended revision per order, the deviators' allocations to the
  area's other prosumers; once per prosumer and order (later deviations of a released prosumer change nothing).
  One revision per shortfall would re-solve the area's allocation for each deviator: with 1,250 prosumers per
  area and a fifth of them deviating, that used 70 % of a core and sent the DSO a revision every 0.2 s;
* ``flex.enrolments.v1`` (keyed by prosumer, no state): an enrolment with bad or unbounded values or a terms hash
  that does not match gets one INVALID_ENROLMENT Rejection (valid ones enrol through the registry view).

State (JSON values, read and written only by the records that need them):

* ``pending``: requests received since the partition's last tick, ``[request, record time]``;
* ``shortfalls``: projected shortfalls received since the partition's last tick (DeviationEvent fields);
* ``a:<area>``: the area's orders, ``order_id -> end of its last slot`` (busy slots and commitments of a new
  request or a re-dispatch read only the orders that have not ended);
* ``r:<request_id>`` (the request and its offer's id), ``f:<offer_id>``: offered requests and their offers;
  ``x:<offer_id>``: what happened to the offer (ACCEPTED, REJECTED or EXPIRED; absent while it is open);
  ``m:<acceptance_id>``: DSO acceptances already processed (replays are refused);
* ``o:<order_id>``: the latest order revision and the prosumers released from it by re-dispatch;
* ``b:``/``fc:``/``s:<prosumer>``: outlook summaries;
* ``due``: ``o:<order_id>``/``r:<request_id>``/``m:<acceptance_id>`` -> wall-clock time (UTC epoch ms) it is
  forgotten (``retention_ms`` after its last slot, or after it was processed), and ``e:<offer_id>`` -> when the
  open offer expires, so a tick touches only what is due.

Outputs, with the single-process desk's deterministic ids: FlexOffer (key request_id), FlexOrder (key order_id, every
revision), Rejection (key subject_id), FlexAllocation (key prosumer_id, one per prosumer of a revision or released
by it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

import orjson

from edream.runtime.contract import Emit, KeyValueState, Record, TransientError
from edream.serde import Serde
from streams.flex.acceptance import FlexAcceptance
from streams.flex.allocations import TOPIC_ALLOCATIONS, allocation_outs
from streams.flex.area_outlook import StateOutlook
from streams.flex.decisions import decision_time, offer_for, order_for, redispatched
from streams.flex.desk import (
    TOPIC_ACCEPTANCES,
    TOPIC_OFFERS,
    TOPIC_ORDERS,
    TOPIC_REJECTIONS,
    TOPIC_REQUESTS,
    out_of,
)
from streams.flex.dso_acceptance import accepted_part, decide, expiry
from streams.flex.dso_view import DsoView
from streams.flex.enrolled import EnrolledRegistry, enrolment_from_bytes
from streams.flex.enrolment import EnrolmentError
from streams.flex.offers import FlexOffer, OfferParams
from streams.flex.orders import FlexOrder
from streams.flex.outlook import CONSUMPTION, PRODUCTION, OutlookConfig
from streams.flex.requests import FlexRequest, to_ms
from streams.flex.validation import Code, Issue, Rejection, rejection
from streams.flex.verification import DeviationEvent
from streams.outputs import Out, encode_outs
from streams.validation.limits import current_limits

log = logging.getLogger(__name__)

TOPIC_ENROLMENTS = "flex.enrolments.v1"
TOPIC_DSOS = "flex.dsos.v1"
TOPIC_BASELINES = "baseline.15m.v1"
TOPIC_FORECASTS = "forecast.profiles.v1"
TOPIC_STATUS = "flex.prosumer.status.v1"
TOPIC_DEVIATIONS = "flex.deviations.v1"
INPUTS = (
    TOPIC_REQUESTS,
    TOPIC_ACCEPTANCES,
    TOPIC_BASELINES,
    TOPIC_FORECASTS,
    TOPIC_STATUS,
    TOPIC_DEVIATIONS,
    TOPIC_ENROLMENTS,
)
OUTPUTS = (TOPIC_OFFERS, TOPIC_ORDERS, TOPIC_REJECTIONS, TOPIC_ALLOCATIONS)
PENDING, DUE, SHORTFALLS = "pending", "due", "shortfalls"
LIVE = ("ACTIVE", "AMENDED")
#: Rejection codes of a message not (provably) from its DSO: its id is not remembered, so a forgery cannot burn it
UNAUTHENTICATED = ("UNSIGNED_REQUEST", "UNKNOWN_DSO", "BAD_SIGNATURE")


@dataclass(frozen=True)
class AreaParams:
    """offer: optimiser parameters; auto_accept: demo setting, order every feasible offer at once without waiting
    for the DSO's acceptance on ``flex.acceptances.v1`` (off: prosumers are ordered only after it);
    redispatch: cover projected shortfalls; retention_ms: how long after its last slot a request, offer and order
    are kept (duplicate requests are recognised for that long), and how long acceptance ids are remembered;
    acceptance_grace_ms: an acceptance is judged as of when it reached the platform (its record time, at most this
    long before the desk's wall clock), so one the DSO sent in time is honoured although a loaded platform
    processes it late; an offer nobody accepted is therefore closed as EXPIRED only this long after its
    ``valid_until``."""

    offer: OfferParams = field(default_factory=OfferParams)
    auto_accept: bool = False
    redispatch: bool = True
    retention_ms: int = 2 * 86_400_000
    acceptance_grace_ms: int = 120_000
    outlook: OutlookConfig = field(default_factory=OutlookConfig)


def _load(state: KeyValueState, key: str) -> Any:
    raw = state.get(key)
    return None if raw is None else orjson.loads(raw)


def _save(state: KeyValueState, key: str, value: Any) -> None:
    state.set(key, orjson.dumps(value))


def deviation_event(rec: Mapping[str, Any]) -> DeviationEvent:
    """A decoded Deviation record as the verification engine's event."""
    return DeviationEvent(
        rec["order_id"],
        rec["prosumer_id"],
        to_ms(rec["slot_start"]),
        to_ms(rec["ts"]),
        rec["kind"],
        float(rec["target_kw"]),
        float(rec["delivered_kw"]),
        float(rec["tolerance"]),
        rec["verdict"],
    )


class FlexAreaProcessor:
    """The :class:`~edream.runtime.contract.StageProcessor` of ``flex`` (see module doc).

    ``topics``: canonical -> loaded topic names; ``clock``: the wall clock requests are validated against and
    ticks use (tests drive a simulated one; None = the later of the tick's time and the process's clock)."""

    def __init__(
        self,
        serde: Serde,
        enrolled: EnrolledRegistry,
        dsos: DsoView,
        topics: Mapping[str, str],
        params: AreaParams | None = None,
        clock: Callable[[], int] | None = None,
    ):
        self.serde, self.enrolled, self.dsos = serde, enrolled, dsos
        self.params, self.clock = params or AreaParams(), clock
        self.topics = dict(topics)
        self.kind = {self.topics.get(t, t): t for t in INPUTS}

    def _wall(self, at_least: int = 0) -> int:
        return self.clock() if self.clock is not None else max(at_least, int(time.time() * 1000))

    def _outlook(self, state: KeyValueState) -> StateOutlook:
        return StateOutlook(self.enrolled.refresh(), state, self.params.outlook)

    # -- records ---------------------------------------------------------------------------------------------
    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        kind = self.kind.get(record.topic)
        if kind == TOPIC_ENROLMENTS:
            return self._encode(self._on_enrolment(record))
        name, rec = self.serde.decode(record.value, record.topic)
        if kind == TOPIC_ACCEPTANCES:
            if name != "FlexAcceptance":
                raise ValueError(f"expected a FlexAcceptance, got {name}")
            acc = FlexAcceptance.from_avro(rec)  # a malformed one raises here and is dead-lettered
            return self._encode(self._on_acceptance(acc, record.timestamp_ms, state))
        if kind == TOPIC_REQUESTS:
            if name != "FlexRequest":
                raise ValueError(f"expected a FlexRequest, got {name}")
            FlexRequest.from_avro(rec)  # a malformed one raises here and is dead-lettered
            # the record's own bytes: JSON state cannot hold every value a request carries (NaN kW became null)
            _save(state, PENDING, [*(_load(state, PENDING) or []), [record.value.hex(), record.timestamp_ms]])
            return []
        if kind == TOPIC_BASELINES and name == "Baseline":
            self._check_area(record, rec["prosumer_id"])
            self._outlook(state).add_baseline(rec, self._wall())
        elif kind == TOPIC_FORECASTS and name == "Forecast":
            if rec.get("entity_kind") != "PROSUMER" or rec.get("property") not in (CONSUMPTION, PRODUCTION):
                return []  # an enrolled prosumer's forecast of another property
            self._check_area(record, rec["entity_id"])
            self._outlook(state).add_forecast(rec, self._wall())
        elif kind == TOPIC_STATUS and name == "FlexProsumerStatus":
            self._outlook(state).set_status(rec, to_ms(rec["ts"]))
        elif kind == TOPIC_DEVIATIONS and name == "Deviation":
            return self._encode(self._on_deviation(deviation_event(rec), state))
        elif kind is None:
            raise ValueError(f"flex does not read {record.topic}")
        return []

    def _check_area(self, record: Record, prosumer_id: str) -> None:
        """A baseline or forecast was routed here by its message key: its prosumer must be enrolled in this area
        (the record's state key), else it came under another prosumer's key and is dead-lettered."""
        area = self.enrolled.get(prosumer_id)
        if area is None or area.area_id.encode() != record.key:
            raise ValueError(
                f"{record.topic} record of prosumer {prosumer_id!r} reached area {record.key!r} (routed by its "
                f"message key), but that prosumer is {'not enrolled' if area is None else 'in area ' + area.area_id}"
                "; the topic must be keyed by the record's prosumer"
            )

    def _on_enrolment(self, record: Record) -> list[Out]:
        """One Rejection per invalid enrolment record, stamped with the record's time (same value on replay)."""
        try:
            enrolment_from_bytes(record.value, self.serde)
        except EnrolmentError as exc:
            subject = record.key.decode(errors="replace") if record.key else ""
            issue = Issue(Code.INVALID_ENROLMENT, str(exc))
            return [out_of(rejection("FlexEnrolment", subject, [issue], record.timestamp_ms))]
        return []

    # -- the area's orders -----------------------------------------------------------------------------------
    def _order(self, state: KeyValueState, order_id: str) -> tuple[FlexOrder, dict[str, Any]] | None:
        raw = _load(state, "o:" + order_id)
        return None if raw is None else (FlexOrder.from_avro(raw["order"]), raw)

    def _live_orders(self, state: KeyValueState, area: str, now: int) -> list[FlexOrder]:
        """The area's live orders whose last slot has not ended before ``now``."""
        out = []
        for oid, end in sorted((_load(state, "a:" + area) or {}).items()):
            if end > now and (o := self._order(state, oid)) is not None and o[0].status in LIVE:
                out.append(o[0])
        return out

    def _store_order(self, state: KeyValueState, order: FlexOrder, area: str, released: list[str]) -> None:
        _save(state, "o:" + order.order_id, {"order": order.to_avro(), "area": area, "released": released})
        end = max(order.slot_starts(), default=0) + order.slot_ms
        index = _load(state, "a:" + area) or {}
        if index.get(order.order_id) != end:
            index[order.order_id] = end
            _save(state, "a:" + area, index)
        self._due(state, {"o:" + order.order_id: end + self.params.retention_ms})

    def _due(self, state: KeyValueState, changes: Mapping[str, int | None]) -> None:
        due = _load(state, DUE) or {}
        for key, at in changes.items():
            if at is None:
                due.pop(key, None)
            else:
                due[key] = at
        _save(state, DUE, due)

    # -- request -> offer -> order ---------------------------------------------------------------------------
    def _submit(self, req: FlexRequest, now: int, state: KeyValueState) -> list[Out]:
        area, registry = req.area_id, self.enrolled.refresh()
        live = self._live_orders(state, area, now)
        outlook = StateOutlook(registry, state, self.params.outlook)
        known = {req.request_id} if state.get("r:" + req.request_id) is not None else set()
        busy = {(area, start, end) for o in live for start, end in o.slot_spans()}
        offer = offer_for(req, now, self.dsos.refresh(), registry, busy, known, outlook, self.params.offer)
        if isinstance(offer, Rejection):
            return [out_of(offer)]
        _save(state, "r:" + req.request_id, {"request": req.to_avro(), "offer_id": offer.offer_id})
        _save(state, "f:" + offer.offer_id, offer.to_avro())
        self._due(
            state, {"r:" + req.request_id: max(req.slot_starts()) + req.slot_ms + self.params.retention_ms}
        )
        outs = [out_of(offer)]
        if offer.status == "INFEASIBLE":
            return outs
        if self.params.auto_accept:
            _save(state, "x:" + offer.offer_id, "ACCEPTED")
            return outs + self._accept(offer, req, now, live, outlook, state)
        if offer.valid_until is not None:
            # closed as EXPIRED once an acceptance that reached the platform in time has had its grace
            self._due(state, {"e:" + offer.offer_id: offer.valid_until + 1 + self.params.acceptance_grace_ms})
        return outs

    def _on_acceptance(self, acc: FlexAcceptance, received_at: int, state: KeyValueState) -> list[Out]:
        """The DSO's answer to an open offer: a Rejection when refused; else the offer closes, and an ACCEPTED
        answer orders the accepted part of it (or is refused by the order's own checks, see :meth:`_accept`).
        ``received_at``: the record time (UTC epoch ms); validity is judged as of it, bounded to the last
        ``acceptance_grace_ms`` before the wall clock (a record time from the future counts as now)."""
        now = self._wall()
        at = min(now, max(received_at, now - self.params.acceptance_grace_ms))
        raw_offer = _load(state, "f:" + acc.offer_id)
        offer = None if raw_offer is None else FlexOffer.from_avro(raw_offer)
        raw_req = None if offer is None else _load(state, "r:" + offer.request_id)
        req = None if raw_req is None else FlexRequest.from_avro(raw_req["request"])
        seen = {acc.acceptance_id} if state.get("m:" + acc.acceptance_id) is not None else set()
        fate = _load(state, "x:" + acc.offer_id)
        refused = decide(acc, offer, req, fate, seen, self.dsos.refresh(), at)
        if refused is None or refused.code not in UNAUTHENTICATED:
            self._remember(state, acc.acceptance_id, now)
        if refused is not None:
            return [out_of(refused)]
        assert offer is not None and req is not None  # decide() refuses an unknown offer
        outs: list[Out] = []
        if acc.decision == "ACCEPTED":
            live = self._live_orders(state, req.area_id, now)
            outs = self._accept(  # ordered as of its receipt: a slot that started since is still ordered
                accepted_part(offer, acc.accepted_kw()), req, at, live, self._outlook(state), state
            )
            if outs[0].schema == "Rejection":  # the order's checks refused it (prosumers since ordered...)
                return outs
        _save(state, "x:" + offer.offer_id, acc.decision)
        self._due(state, {"e:" + offer.offer_id: None})
        return outs

    def _remember(self, state: KeyValueState, acceptance_id: str, now: int) -> None:
        """An authenticated acceptance id, refused as a replay from now on (for ``retention_ms``)."""
        _save(state, "m:" + acceptance_id, now)
        self._due(state, {"m:" + acceptance_id: now + self.params.retention_ms})

    def _accept(
        self,
        offer: FlexOffer,
        req: FlexRequest,
        now: int,
        live: list[FlexOrder],
        outlook: StateOutlook,
        state: KeyValueState,
    ) -> list[Out]:
        committed = {span for o in live for span in o.prosumer_spans()}
        order = order_for(offer, req, now, self.enrolled.refresh(), committed, outlook)
        if isinstance(order, Rejection):
            return [out_of(order)]
        self._store_order(state, order, req.area_id, [])
        return [out_of(order), *allocation_outs(order)]

    # -- re-dispatch -------------------------------------------------------------------------------------------
    def _on_deviation(self, ev: DeviationEvent, state: KeyValueState) -> list[Out]:
        """A projected shortfall of a live order's prosumer that is not released yet joins ``shortfalls``: the next
        tick re-dispatches them together (:meth:`_redispatch`)."""
        if not (self.params.redispatch and ev.kind == "PROJECTED" and ev.verdict == "SHORTFALL"):
            return []
        found = self._order(state, ev.order_id)
        if found is None:  # not this desk's order, or forgotten
            return []
        order, raw = found
        if ev.prosumer_id in raw["released"] or order.status not in LIVE:
            return []
        queued = _load(state, SHORTFALLS) or []
        if not any(q[0] == ev.order_id and q[1] == ev.prosumer_id for q in queued):
            _save(state, SHORTFALLS, [*queued, astuple(ev)])
        return []

    def _redispatch(self, shortfalls: list[DeviationEvent], state: KeyValueState) -> list[Out]:
        """One amended revision per order for its queued shortfalls, as of the latest of their event times; the
        deviators are released from the order. A batch that cannot be re-dispatched (an error that is not an
        outage) is logged and dropped: the tick's state would roll back and keep it, failing every later tick."""
        by_order: dict[str, list[DeviationEvent]] = {}
        for ev in shortfalls:
            by_order.setdefault(ev.order_id, []).append(ev)
        outs: list[Out] = []
        for order_id, batch in by_order.items():
            try:
                outs += self._redispatch_order(order_id, batch, state)
            except TransientError:
                raise
            except Exception:  # noqa: BLE001 - logged with the order; the next shortfalls are re-dispatched anew
                log.exception("flex: re-dispatch of order %s for %d shortfalls failed", order_id, len(batch))
        return outs

    def _redispatch_order(
        self, order_id: str, batch: list[DeviationEvent], state: KeyValueState
    ) -> list[Out]:
        found = self._order(state, order_id)
        if found is None:
            return []
        order, raw = found
        released: list[str] = raw["released"]
        batch = [ev for ev in batch if ev.prosumer_id not in released]
        if not batch or order.status not in LIVE:
            return []
        req = FlexRequest.from_avro(_load(state, "r:" + order.request_id)["request"])
        registry = self.enrolled.refresh()
        outlook = StateOutlook(registry, state, self.params.outlook)
        committed: dict[tuple[str, int], float] = {}
        for o in self._live_orders(state, raw["area"], max(ev.ts for ev in batch)):
            for a in o.allocations:
                committed[(a.prosumer_id, a.slot_start)] = (
                    committed.get((a.prosumer_id, a.slot_start), 0.0) + a.kw
                )
        amended = redispatched(
            batch,
            order,
            req,
            released,
            registry.in_area(req.area_id),
            outlook,
            lambda pid, t: committed.get((pid, t), 0.0),
            self.params.offer,
            outlook.delivered_kw,
        )
        released = [*released, *(ev.prosumer_id for ev in batch)]
        if amended is None:
            _save(state, "o:" + order.order_id, {**raw, "released": released})
            return []
        self._store_order(state, amended, raw["area"], released)
        return [out_of(amended), *allocation_outs(amended, order)]

    # -- ticks -----------------------------------------------------------------------------------------------
    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        now = self._wall(now_ms)
        outs: list[Out] = []
        queued = _load(state, SHORTFALLS)
        if queued:  # re-dispatch first: the offers of new requests see the amended commitments
            state.delete(SHORTFALLS)
            outs += self._redispatch([DeviationEvent(*row) for row in queued], state)
        pending = _load(state, PENDING)
        if pending:
            state.delete(PENDING)
            max_past_ms = current_limits().max_past_ms
            for item in pending:
                raw, arrived_at = item if isinstance(item, list) else (item, now)  # kept before record times
                outs += self._decide_pending(raw, arrived_at, now, max_past_ms, state)
        due: dict[str, int] = _load(state, DUE) or {}
        expired = sorted(k for k, at in due.items() if at <= now)
        if expired:
            for key in expired:
                outs += self._expire(state, key[2:], now) if key.startswith("e:") else []
                self._forget(state, key)
            self._due(state, dict.fromkeys(expired))
        return self._encode(outs)

    def _pending_request(self, raw: str | dict[str, Any]) -> FlexRequest:
        """A kept request: the record's bytes in hex (a decoded Avro dict in state written before them)."""
        if isinstance(raw, str):
            raw = self.serde.decode(bytes.fromhex(raw), self.topics.get(TOPIC_REQUESTS, TOPIC_REQUESTS))[1]
        return FlexRequest.from_avro(raw)

    def _decide_pending(
        self, raw: str | dict[str, Any], arrived_at: int, now: int, max_past_ms: int, state: KeyValueState
    ) -> list[Out]:
        """The offer or Rejection of one kept request. A request that cannot be decided (an error that is not an
        outage) gets a Rejection INVALID_FIELD with the error: one poisoned request must not fail every later
        tick of its partition (the tick's state changes are rolled back, so it would be kept for good)."""
        req = None
        try:
            req = self._pending_request(raw)
            at = decision_time(arrived_at, now, min(req.slot_starts(), default=now), max_past_ms)
            return self._submit(req, at, state)
        except TransientError:
            raise
        except Exception as exc:  # noqa: BLE001 - turned into the request's Rejection
            subject = req.request_id if req is not None else "?"
            issue = Issue(Code.INVALID_FIELD, f"request not decidable: {type(exc).__name__}: {exc}")
            return [out_of(rejection("FlexRequest", subject, [issue], now))]

    def _expire(self, state: KeyValueState, offer_id: str, now: int) -> list[Out]:
        """An offer still open at the end of its validity: closed as EXPIRED, with a Rejection OFFER_EXPIRED."""
        raw = _load(state, "f:" + offer_id)
        if raw is None or state.get("x:" + offer_id) is not None:
            return []
        offer = FlexOffer.from_avro(raw)
        _save(state, "x:" + offer_id, "EXPIRED")
        req = FlexRequest.from_avro(_load(state, "r:" + offer.request_id)["request"])
        return [out_of(expiry(offer, req, now))]

    def _forget(self, state: KeyValueState, key: str) -> None:
        """Forget an order (and its place in the area index) or a request and its offer, past retention."""
        if key.startswith("o:"):
            raw = _load(state, key)
            state.delete(key)
            if raw is not None:
                index = _load(state, "a:" + raw["area"]) or {}
                index.pop(key[2:], None)
                if index:
                    _save(state, "a:" + raw["area"], index)
                else:
                    state.delete("a:" + raw["area"])
        elif key.startswith("r:"):
            raw = _load(state, key)
            state.delete(key)
            if raw is not None:
                state.delete("f:" + raw["offer_id"])
                state.delete("x:" + raw["offer_id"])
        elif key.startswith("m:"):
            state.delete(key)

    def _encode(self, outs: list[Out]) -> list[Emit]:
        return [Emit(t, k, v) for t, k, v in encode_outs(self.serde, self.topics, outs)]
