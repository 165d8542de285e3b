"""The per-prosumer half of the flex desk on the stream runtime (stage ``flex-prosumers``): verification,
settlement, device set-points and the prosumer's status for the area desk.

Inputs, all keyed (or re-keyed) by ``prosumer_id``, so everything a record needs is in its partition's state:

* ``meter.readings.raw.v1``: the stage's re-key (:mod:`streams.agents.flex_prosumers`) keeps only net active
  power readings of enrolled prosumers; here a reading is decoded, validated against the Measurement contract
  (:func:`streams.validation.measurement.check_measurement`: a bad one raises and is dead-lettered before it
  touches any state), then feeds the prosumer's metered power and its verification engine;
* ``flex.allocations.v1`` (internal, from the area desk): the prosumer's share of an order revision; a lower or
  equal revision than the one kept is a replay and changes nothing.

State per prosumer (JSON, one key each, read and written only by that prosumer's records):

* ``m:<prosumer>``: metered per-minute sums over the METERED window (:class:`~streams.flex.outlook.OutlookBook`
  semantics) and the minute last published;
* ``v:<prosumer>`` (only while the prosumer has orders): its order slices, its
  :class:`~streams.flex.verification.VerificationEngine` and :class:`~streams.flex.commands.CommandPlanner`;
* ``due`` (one per partition): prosumer -> next wall-clock time (UTC epoch ms) a tick has work for it (a slot to
  close, a set-point to send or restore, old orders to forget), so a tick touches only those prosumers.

Outputs: Deviation (key order_id), Settlement (key window id), DeviceCommand (key device id) with the same
deterministic ids as the single-process desk, and FlexProsumerStatus (key prosumer_id) when the prosumer's reading
minute moves on or a verdict is issued.

Event time: a prosumer's slots close on its own readings (``allowed_lateness_ms`` after the latest) or, without
readings, on the wall clock ``close_after_ms`` after slot end (a tick), as in the desk. Times are UTC epoch ms, power
kW.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from edream.runtime.contract import Emit, KeyValueState, Record
from edream.serde import Serde
from streams.flex.commands import CommandPlanner
from streams.flex.desk import out_of
from streams.flex.enrolled import EnrolledRegistry
from streams.flex.enrolment import ProsumerRecord, Registry
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.outlook import MS_PER_MINUTE, OutlookBook, OutlookConfig
from streams.flex.requests import to_ms
from streams.flex.settlement import settle
from streams.flex.verification import DeviationEvent, VerificationEngine
from streams.outputs import Out, encode_outs
from streams.validation.fields import InvalidRecord
from streams.validation.measurement import check_measurement

TOPIC_READINGS = "meter.readings.raw.v1"
TOPIC_ALLOCATIONS = "flex.allocations.v1"
TOPIC_STATUS = "flex.prosumer.status.v1"
DUE_KEY = "due"


def net_power_kw(rec: Mapping[str, Any]) -> float | None:
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


@dataclass(frozen=True)
class ProsumerParams:
    """confirm_readings: see VerificationEngine; close_after_ms: wall-clock delay after slot end before a slot
    without readings is closed; retention_ms: how long after its last slot an order's state is kept."""

    confirm_readings: int = 2
    close_after_ms: int = 120_000
    retention_ms: int = 2 * 86_400_000
    outlook: OutlookConfig = OutlookConfig()


def _load(state: KeyValueState, key: str) -> Any:
    raw = state.get(key)
    return None if raw is None else orjson.loads(raw)


def _save(state: KeyValueState, key: str, value: Any) -> None:
    state.set(key, orjson.dumps(value))


def order_slice(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A FlexAllocation record as the JSON kept per prosumer."""
    return {
        "order_id": rec["order_id"],
        "revision": int(rec["revision"]),
        "direction": str(rec["direction"]),
        "status": rec["status"],
        "slot_minutes": int(rec["slot_minutes"]),
        "created_at": to_ms(rec["created_at"]),
        "slots": [[to_ms(s["slot_start"]), float(s["kw"]), float(s["baseline_kw"])] for s in rec["slots"]],
    }


def slice_order(prosumer_id: str, s: Mapping[str, Any]) -> FlexOrder:
    """The prosumer's part of an order as a FlexOrder (offer and request ids are the desk's business)."""
    return FlexOrder(
        order_id=s["order_id"],
        offer_id="",
        request_id="",
        revision=s["revision"],
        direction=Direction(s["direction"]),
        status=s["status"],
        allocations=tuple(OrderAllocation(prosumer_id, t, kw, base) for t, kw, base in s["slots"]),
        slot_minutes=s["slot_minutes"],
        created_at=s["created_at"],
    )


class _Prosumer:
    """One prosumer's order slices, verification engine and command planner, loaded from ``v:<prosumer>``."""

    def __init__(self, prosumer_id: str, record: ProsumerRecord | None, params: ProsumerParams, raw: Any):
        self.prosumer_id = prosumer_id
        tolerance = {prosumer_id: record.terms.tolerance_range} if record else {}
        self.engine = VerificationEngine(tolerance, confirm_readings=params.confirm_readings)
        self.planner = CommandPlanner()
        self.orders: dict[str, dict[str, Any]] = {}
        if raw is not None:
            self.orders = raw["orders"]
            self.engine.restore_state(raw["engine"])
            self.planner.restore_state(raw["planner"])

    def flex_orders(self) -> list[FlexOrder]:
        return [slice_order(self.prosumer_id, s) for s in self.orders.values()]

    def dump(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "engine": self.engine.export_state(),
            "planner": self.planner.export_state(),
        }

    def next_due(self, after: int, params: ProsumerParams) -> int | None:
        """The next wall-clock time after ``after`` a tick has work for this prosumer (None: its state can go)."""
        times: list[int] = []
        last_end = 0
        for s in self.orders.values():
            slot_ms = s["slot_minutes"] * MS_PER_MINUTE
            for t, _kw, _base in s["slots"]:
                times += [t, t + slot_ms, t + slot_ms + params.close_after_ms]
                last_end = max(last_end, t + slot_ms)
        times += [a.slot_end for a in self.planner.active.values()]
        future = [t for t in times if t > after]
        if future:
            return min(future)
        if self.engine.open_tracks or self.planner.active:
            return after + params.close_after_ms
        if last_end + params.retention_ms > after:
            return last_end + params.retention_ms
        return None


class FlexProsumerProcessor:
    """The :class:`~edream.runtime.contract.StageProcessor` of ``flex-prosumers`` (see module doc).

    ``topics``: canonical -> loaded topic names; ``clock``: the wall clock readings are validated against and
    ticks use instead of the tick's time (tests drive a simulated clock; None = the tick's ``now_ms`` and the
    record's broker timestamp)."""

    def __init__(
        self,
        serde: Serde,
        enrolled: EnrolledRegistry,
        topics: Mapping[str, str],
        params: ProsumerParams | None = None,
        clock: Callable[[], int] | None = None,
    ):
        self.serde, self.enrolled, self.params, self.clock = (
            serde,
            enrolled,
            params or ProsumerParams(),
            clock,
        )
        self.topics = dict(topics)
        self.readings = self.topics.get(TOPIC_READINGS, TOPIC_READINGS)
        self.allocations = self.topics.get(TOPIC_ALLOCATIONS, TOPIC_ALLOCATIONS)

    # -- records ---------------------------------------------------------------------------------------------
    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        if record.topic == self.readings:
            return self._encode(self._on_reading(record, state))
        if record.topic == self.allocations:
            return self._encode(self._on_allocation(record, state))
        raise ValueError(f"flex-prosumers does not read {record.topic}")

    def _wall(self) -> int:
        return self.clock() if self.clock is not None else int(time.time() * 1000)

    def _on_reading(self, record: Record, state: KeyValueState) -> list[Out]:
        name, rec = self.serde.decode(record.value, record.topic)
        kw = net_power_kw(rec) if name == "Measurement" else None
        if kw is None:
            return []
        if errors := check_measurement(rec, now_ms=self._wall()):
            raise InvalidRecord("Measurement", errors)
        pid, ts = rec["prosumer_id"], to_ms(rec["ts"])
        registry = self.enrolled.refresh()
        enrolled = registry.get(pid)
        if enrolled is None:
            return []
        metered_kw, new_minute = self._meter(state, registry, pid, ts, kw)
        outs: list[Out] = []
        raw = _load(state, "v:" + pid)
        p = None
        if raw is not None:
            p = _Prosumer(pid, enrolled, self.params, raw)
            events = p.engine.on_reading(pid, ts, kw)
            outs += self._verdicts(p, registry, events)
            if ts // 1000 > p.planner.now // 1000:  # device set-points on event time, at most once a second
                book = self._book(state, registry, pid)
                outs += [out_of(c) for c in p.planner.due(ts, p.flex_orders(), registry, book)]
            _save(state, "v:" + pid, p.dump())
            if events:
                new_minute = True
        if new_minute:
            outs.append(self._status(enrolled, ts, metered_kw, p))
        return outs

    def _meter(
        self, state: KeyValueState, registry: Registry, pid: str, ts: int, kw: float
    ) -> tuple[float | None, bool]:
        """Add the reading to the prosumer's metered minutes; (METERED kW, whether its minute moved on)."""
        book = self._book(state, registry, pid)
        m = _load(state, "m:" + pid) or {"published": 0}
        book.on_reading(pid, ts, kw)
        latest = book.latest_reading[pid]
        since = latest - latest % MS_PER_MINUTE - self.params.outlook.metered_window_ms
        minutes = book.metered[pid]
        for minute in [k for k in minutes if k <= since]:
            del minutes[minute]
        minute_now = latest - latest % MS_PER_MINUTE
        moved = minute_now > m["published"]
        _save(
            state,
            "m:" + pid,
            {
                "minutes": [[k, s, n] for k, (s, n) in minutes.items()],
                "latest": latest,
                "published": minute_now if moved else m["published"],
            },
        )
        return book.metered_kw(pid), moved

    def _book(self, state: KeyValueState, registry: Registry, pid: str) -> OutlookBook:
        """An OutlookBook holding this prosumer's metered minutes (the outlook its set-points are planned with)."""
        book = OutlookBook(registry, self.params.outlook)
        m = _load(state, "m:" + pid)
        if m is not None:
            book.metered[pid] = {k: (s, n) for k, s, n in m["minutes"]}
            book.latest_reading[pid] = m["latest"]
        return book

    def _status(self, record: ProsumerRecord, ts: int, metered_kw: float | None, p: _Prosumer | None) -> Out:
        delivered = []
        if p is not None:
            running = sorted(
                {t for s in p.orders.values() for t, _k, _b in s["slots"]} & _running_slots(p, ts)
            )
            delivered = [
                {"slot_start": t, "kw": round(p.engine.delivered_avg_kw(p.prosumer_id, t), 6)}
                for t in running
            ]
        rec = {
            "prosumer_id": record.prosumer_id,
            "area_id": record.area_id,
            "ts": ts,
            "metered_kw": metered_kw,
            "delivered": delivered,
        }
        return Out(TOPIC_STATUS, "FlexProsumerStatus", record.prosumer_id, rec)

    def _on_allocation(self, record: Record, state: KeyValueState) -> list[Out]:
        name, rec = self.serde.decode(record.value, record.topic)
        if name != "FlexAllocation":
            raise ValueError(f"expected a FlexAllocation, got {name}")
        pid = rec["prosumer_id"]
        p = _Prosumer(pid, self.enrolled.get(pid), self.params, _load(state, "v:" + pid))
        s = order_slice(rec)
        kept = p.orders.get(s["order_id"])
        if kept is not None and kept["revision"] >= s["revision"]:
            return []  # a replayed or stale revision
        p.orders[s["order_id"]] = s
        p.engine.apply_order(slice_order(pid, s), s["created_at"])
        _save(state, "v:" + pid, p.dump())
        self._schedule(state, {pid: p.next_due(s["created_at"] - 1, self.params)})
        return []

    # -- ticks -----------------------------------------------------------------------------------------------
    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        now = self.clock() if self.clock is not None else now_ms
        due: dict[str, int] = _load(state, DUE_KEY) or {}
        todo = sorted(pid for pid, at in due.items() if at <= now)
        if not todo:
            return []
        registry = self.enrolled.refresh()
        outs: list[Out] = []
        changes: dict[str, int | None] = {}
        for pid in todo:
            raw = _load(state, "v:" + pid)
            if raw is None:
                changes[pid] = None
                continue
            p = _Prosumer(pid, registry.get(pid), self.params, raw)
            events = p.engine.advance_to(now - self.params.close_after_ms)
            outs += self._verdicts(p, registry, events)
            outs += [
                out_of(c)
                for c in p.planner.due(now, p.flex_orders(), registry, self._book(state, registry, pid))
            ]
            self._forget_old(p, now)
            changes[pid] = p.next_due(now, self.params)
            if changes[pid] is None:
                state.delete("v:" + pid)
            else:
                _save(state, "v:" + pid, p.dump())
        self._schedule(state, changes, due)
        return self._encode(outs)

    def _forget_old(self, p: _Prosumer, now: int) -> None:
        """Forget orders whose last slot ended ``retention_ms`` ago (their tracks are final by then)."""
        for oid, s in list(p.orders.items()):
            end = max((t for t, _k, _b in s["slots"]), default=0) + s["slot_minutes"] * MS_PER_MINUTE
            if end + self.params.retention_ms <= now:
                del p.orders[oid]
                p.engine.forget(oid)
        p.planner.prune(now - self.params.retention_ms)

    def _schedule(
        self, state: KeyValueState, changes: Mapping[str, int | None], due: dict[str, int] | None = None
    ) -> None:
        if due is None:
            due = _load(state, DUE_KEY) or {}
        for pid, at in changes.items():
            if at is None:
                due.pop(pid, None)
            else:
                due[pid] = at
        _save(state, DUE_KEY, due)

    # -- verdicts --------------------------------------------------------------------------------------------
    def _verdicts(self, p: _Prosumer, registry: Registry, events: Iterable[DeviationEvent]) -> list[Out]:
        """Deviation events, and the settlement of every FINAL one under the prosumer's contract."""
        outs: list[Out] = []
        for ev in events:
            outs.append(out_of(ev))
            if ev.kind != "FINAL":
                continue
            rec, s = registry.get(ev.prosumer_id), p.orders.get(ev.order_id)
            if rec is not None and s is not None:
                outs.append(out_of(settle(ev, rec.terms, s["slot_minutes"], computed_at=ev.ts)))
        return outs

    def _encode(self, outs: list[Out]) -> list[Emit]:
        return [Emit(t, k, v) for t, k, v in encode_outs(self.serde, self.topics, outs)]


def _running_slots(p: _Prosumer, ts: int) -> set[int]:
    out = set()
    for s in p.orders.values():
        slot_ms = s["slot_minutes"] * MS_PER_MINUTE
        out |= {t for t, _k, _b in s["slots"] if t <= ts < t + slot_ms}
    return out
