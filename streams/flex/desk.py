"""The aggregator's flexibility desk: the whole lifecycle wired in-process (no broker).

It owns the state a stream processor would keep (requests, offers, orders, commitments, the verification
engine) and turns inputs into output events, so the Kafka wiring only moves bytes. Every input returns the
events it produced as :class:`Out` records (topic, Avro contract name, key, record). Rejected inputs change
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from streams.flex.acceptance import FlexAcceptance
from streams.flex.commands import CommandPlanner, DeviceCommand
from streams.flex.decisions import offer_for, order_for, redispatched
from streams.flex.dsos import DsoRegistry
from streams.flex.enrolment import ProsumerRecord, Registry
from streams.flex.offers import FlexOffer, OfferParams, OutlookFn
from streams.flex.orders import FlexOrder
from streams.flex.requests import FlexRequest
from streams.flex.settlement import FlexSettlement, settle
from streams.flex.validation import Code, Issue, Rejection, rejection
from streams.flex.verification import DeviationEvent, VerificationEngine
from streams.outputs import Out

TOPIC_REQUESTS = "flex.requests.v1"
TOPIC_ACCEPTANCES = "flex.acceptances.v1"
TOPIC_OFFERS = "flex.offers.v1"
TOPIC_ORDERS = "flex.orders.v1"
TOPIC_DEVIATIONS = "flex.deviations.v1"
TOPIC_SETTLEMENTS = "settlement.flex.v1"
TOPIC_REJECTIONS = "platform.rejections.v1"
TOPIC_COMMANDS = "device.commands.v1"
PRUNE_EVERY_MS = 60_000


def out_of(
    event: FlexRequest
    | FlexAcceptance
    | FlexOffer
    | FlexOrder
    | DeviationEvent
    | FlexSettlement
    | Rejection
    | DeviceCommand,
) -> Out:
    match event:
        case FlexRequest():
            return Out(TOPIC_REQUESTS, "FlexRequest", event.request_id, event.to_avro())
        case FlexAcceptance():
            return Out(TOPIC_ACCEPTANCES, "FlexAcceptance", event.offer_id, event.to_avro())
        case DeviceCommand():
            return Out(TOPIC_COMMANDS, "DeviceCommand", event.device_id, event.to_avro())
        case FlexOffer():
            return Out(TOPIC_OFFERS, "FlexOffer", event.request_id, event.to_avro())
        case FlexOrder():
            return Out(TOPIC_ORDERS, "FlexOrder", event.order_id, event.to_avro())
        case DeviationEvent():
            return Out(TOPIC_DEVIATIONS, "Deviation", event.order_id, event.to_avro())
        case FlexSettlement():
            return Out(TOPIC_SETTLEMENTS, "Settlement", event.window_id, event.to_avro())
        case Rejection():
            return Out(TOPIC_REJECTIONS, "Rejection", event.subject_id, event.to_avro())
    raise TypeError(type(event))


@dataclass
class FlexDesk:
    registry: Registry
    outlook: OutlookFn
    params: OfferParams = field(default_factory=OfferParams)
    confirm_readings: int = 2
    redispatch: bool = True
    close_after_ms: int = 120_000
    retention_ms: int = 2 * 86_400_000
    dsos: DsoRegistry = field(default_factory=DsoRegistry)  # who may request flexibility (flex.dsos.v1)

    def __post_init__(self) -> None:
        self.requests: dict[str, FlexRequest] = {}
        self.offers: dict[str, FlexOffer] = {}
        self.orders: dict[str, FlexOrder] = {}
        self.settlements: dict[str, FlexSettlement] = {}
        self.deviations: list[DeviationEvent] = []
        self.released: dict[str, set[str]] = {}  # order_id -> prosumers that deviated (no more re-dispatch)
        # order_id -> new deviators, re-dispatched together; the latest event time queued (UTC epoch ms)
        self.shortfalls: dict[str, list[DeviationEvent]] = {}
        self.queued_until = 0
        self.engine = VerificationEngine(_Tolerances(self.registry), confirm_readings=self.confirm_readings)
        self.commands = CommandPlanner()
        self.pending_requests: list[FlexRequest] = []  # received, to be offered when the stream is caught up
        self.pruned_at = 0  # UTC epoch ms of the last prune

    # -- commitments ----------------------------------------------------------------------------------------
    def _live_orders(self) -> list[FlexOrder]:
        return [o for o in self.orders.values() if o.status in ("ACTIVE", "AMENDED")]

    def committed(self) -> dict[tuple[str, int], float]:
        """(prosumer_id, slot_start) -> kW owed across live orders."""
        out: dict[tuple[str, int], float] = {}
        for o in self._live_orders():
            for a in o.allocations:
                out[(a.prosumer_id, a.slot_start)] = out.get((a.prosumer_id, a.slot_start), 0.0) + a.kw
        return out

    def busy_area_slots(self) -> set[tuple[str, int, int]]:
        """(area_id, slot start, slot end) UTC epoch ms of every slot of a live order."""
        return {
            (self.requests[o.request_id].area_id, start, end)
            for o in self._live_orders()
            for start, end in o.slot_spans()
        }

    # -- request -> offer -----------------------------------------------------------------------------------
    def submit(self, req: FlexRequest, now: int) -> list[Out]:
        """Offer for a DSO request. A request not signed by its registered DSO is rejected (UNSIGNED_REQUEST,
        UNKNOWN_DSO, BAD_SIGNATURE) before its content is looked at, and leaves no trace in the desk."""
        result = offer_for(
            req,
            now,
            self.dsos,
            self.registry,
            self.busy_area_slots(),
            self.requests.keys(),
            self.outlook,
            self.params,
        )
        if isinstance(result, Rejection):
            return [out_of(result)]
        self.requests[req.request_id] = req
        self.offers[result.offer_id] = result
        return [out_of(result)]

    def accept(self, offer_id: str, now: int) -> list[Out]:
        offer = self.offers.get(offer_id)
        if offer is None:
            return [
                out_of(rejection("FlexOffer", offer_id, [Issue(Code.UNKNOWN_OFFER, "no such offer")], now))
            ]
        req = self.requests[offer.request_id]
        owed = {span for o in self._live_orders() for span in o.prosumer_spans()}
        result = order_for(offer, req, now, self.registry, owed, self.outlook)
        if isinstance(result, Rejection):
            return [out_of(result)]
        self.orders[result.order_id] = result
        self.engine.apply_order(result, now)
        return [out_of(result)]

    # -- delivery -------------------------------------------------------------------------------------------
    def on_reading(self, prosumer_id: str, ts: int, kw: float) -> list[Out]:
        """One reading (``ts`` UTC epoch ms, ``kw``). Shortfalls seen at earlier event times are re-dispatched first:
        the desk re-dispatches every shortfall of one reading step together."""
        out = self.redispatch_queued() if self.shortfalls and ts > self.queued_until else []
        out += self._handle(self.engine.on_reading(prosumer_id, ts, kw), ts)
        if ts // 1000 > self.commands.now // 1000:  # device set-points on event time, at most once a second
            out.extend(self._due_commands(ts))
        return out

    def advance_to(self, watermark: int) -> list[Out]:
        return self.redispatch_queued() + self._handle(self.engine.advance_to(watermark), watermark)

    def on_timer(self, now: int) -> list[Out]:
        """Wall-clock timer: close slots whose end is ``close_after_ms`` past (even if no reading arrives, e.g.
        meters offline: the unmeasured rest of the slot delivers nothing), send due set-points, forget old orders."""
        out = self.advance_to(now - self.close_after_ms)
        out.extend(self._due_commands(now))
        if now - self.pruned_at >= PRUNE_EVERY_MS:  # pruning walks all state: not on every 1-s tick
            self.prune(now - self.retention_ms)
            self.pruned_at = now
        return out

    def _due_commands(self, now: int) -> list[Out]:
        live = [o for o in self.orders.values() if o.status != "CANCELLED"]
        return [out_of(c) for c in self.commands.due(now, live, self.registry, self.outlook)]

    def prune(self, before: int) -> None:
        """Forget completed orders (with their request, offer, settlements and verdicts) whose last slot ended
        before ``before``, UTC epoch ms; the outlook and the command planner forget their old data too."""
        for oid, o in list(self.orders.items()):
            if o.status == "COMPLETED" and max(o.slot_starts(), default=0) + o.slot_ms < before:
                del self.orders[oid]
                self.offers.pop(o.offer_id, None)
                self.requests.pop(o.request_id, None)
                self.released.pop(oid, None)
                self.engine.forget(oid)
                for sid in [k for k, s in self.settlements.items() if s.reference_id == oid]:
                    del self.settlements[sid]
        self.deviations = [d for d in self.deviations if d.order_id in self.orders]
        referenced = {o.request_id for o in self.orders.values()}
        for rid in [
            r for r, q in self.requests.items() if r not in referenced and max(q.slot_starts()) < before
        ]:
            self.requests.pop(rid)
        for fid in [f for f, of in self.offers.items() if of.request_id not in self.requests]:
            self.offers.pop(fid)
        self.commands.prune(before)
        if hasattr(self.outlook, "prune"):
            self.outlook.prune(before + self.retention_ms)

    def _handle(self, events: list[DeviationEvent], now: int) -> list[Out]:
        out: list[Out] = []
        for ev in events:
            self.deviations.append(ev)
            out.append(out_of(ev))
            if ev.kind == "FINAL":
                out.extend(self._settle(ev))
            elif ev.verdict == "SHORTFALL" and self.redispatch:
                self._queue_shortfall(ev)
        return out

    def _settle(self, ev: DeviationEvent) -> list[Out]:
        rec = self.registry.get(ev.prosumer_id)
        order = self.orders[ev.order_id]
        if rec is None:
            return []
        s = settle(ev, rec.terms, order.slot_minutes, computed_at=ev.ts)
        self.settlements[s.settlement_id] = s
        if not self.engine_has_open(order.order_id):
            self.orders[order.order_id] = replace(order, status="COMPLETED")
        return [out_of(s)]

    def engine_has_open(self, order_id: str) -> bool:
        return any(not r["final"] for r in self.engine.delivery(order_id))

    def _queue_shortfall(self, ev: DeviationEvent) -> None:
        queued = self.shortfalls.setdefault(ev.order_id, [])
        if ev.prosumer_id not in self.released.get(ev.order_id, ()) and all(
            q.prosumer_id != ev.prosumer_id for q in queued
        ):
            queued.append(ev)
            self.queued_until = max(self.queued_until, ev.ts)

    def redispatch_queued(self) -> list[Out]:
        """Re-dispatch the queued shortfalls: one amended revision per order, as of the latest shortfall's event
        time (:func:`~streams.flex.decisions.redispatched`); the deviators are released from the order."""
        out: list[Out] = []
        queued, self.shortfalls = self.shortfalls, {}
        for order_id, shortfalls in queued.items():
            order = self.orders.get(order_id)
            if order is None or order.status not in ("ACTIVE", "AMENDED"):
                continue
            released = self.released.setdefault(order_id, set())
            committed = self.committed()
            req = self.requests[order.request_id]
            amended = redispatched(
                shortfalls,
                order,
                req,
                released,
                self.registry.in_area(req.area_id),
                self.outlook,
                lambda pid, t, c=committed: c.get((pid, t), 0.0),
                self.params,
                self.engine.delivered_avg_kw,
            )
            released.update(ev.prosumer_id for ev in shortfalls)
            if amended is not None:
                self.orders[order_id] = amended
                self.engine.apply_order(amended, max(ev.ts for ev in shortfalls))
                out.append(out_of(amended))
        return out

    # -- queries ----------------------------------------------------------------------------------------------
    def status(self, order_id: str) -> dict[str, Any]:
        """Per-prosumer delivery so far and per-slot totals for ``order_id``."""
        order = self.orders[order_id]
        rows = self.engine.delivery(order_id)
        slots: dict[int, dict[str, float]] = {}
        for r in rows:
            s = slots.setdefault(r["slot_start"], {"target_kw": 0.0, "delivered_kw": 0.0})
            s["target_kw"] = round(s["target_kw"] + r["target_kw"], 3)
            s["delivered_kw"] = round(s["delivered_kw"] + r["delivered_kw"], 3)
        return {
            "order_id": order_id,
            "revision": order.revision,
            "status": order.status,
            "slots": {str(k): v for k, v in sorted(slots.items())},
            "prosumers": rows,
        }


class _Tolerances(dict):
    """Lazy prosumer_id -> contract tolerance ``range`` view of the registry."""

    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self._registry = registry

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        rec: ProsumerRecord | None = self._registry.get(key)
        return rec.terms.tolerance_range if rec else default
