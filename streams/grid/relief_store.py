"""The grid stage's proof-of-relief state, per grid, one small state key per order, slot and meter reading.

* ``ro|<grid>|<order_id>``: the latest revision of an order touching the grid's prosumers (FlexOrder avro as JSON;
  an older or equal revision never replaces it);
* ``rs|<grid>|<slot>``: a slot (UTC epoch ms start) some order touches: the ids of those orders and, once the
  congestion forecast covered it, the frozen *expected* figures (loading before/after the orders per congestion
  point, each prosumer's expected kW, the version of the inputs);
* ``rx|<grid>``: the open slots (ordered, no measured verdict yet): the index the tick walks;
* ``rc|<grid>``: the measured slots still taking corrections (slot -> whether an interval changed since the last
  MEASURED record), with the published figures in their ``rs`` key;
* ``rm|<grid>|<slot>|<prosumer>``: that prosumer's measured intervals in an open or measured slot, per meter the
  latest version (``[version, avg_kw, computed_at]``);
* ``rd|<grid>``: orders changed since the last expected relief.

A slot's keys are deleted when its corrections window is over (:func:`close_slot`), an order's when no open or
measured slot references it any more, so the state holds the slots between ordering and the end of corrections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from edream.runtime.contract import KeyValueState
from streams.analytics.baseline_lookback import merge_reading
from streams.flex.orders import FlexOrder


def _j(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _get(state: KeyValueState, key: str) -> Any:
    raw = state.get(key)
    return None if raw is None else json.loads(raw)


def open_slots(state: KeyValueState, grid: str) -> list[int]:
    return _get(state, f"rx|{grid}") or []


def _set_open(state: KeyValueState, grid: str, slots: Iterable[int]) -> None:
    state.set(f"rx|{grid}", _j(sorted(set(slots))))


def measured_slots(state: KeyValueState, grid: str) -> dict[int, bool]:
    """The measured slots still taking corrections -> whether an interval of theirs changed since measured."""
    return {int(k): bool(v) for k, v in (_get(state, f"rc|{grid}") or {}).items()}


def _set_measured(state: KeyValueState, grid: str, slots: Mapping[int, bool]) -> None:
    state.set(f"rc|{grid}", _j({str(k): int(v) for k, v in sorted(slots.items())}))


@dataclass
class SlotState:
    """``orders``: ids of the orders touching the slot; ``expected``: the frozen expected figures or None;
    ``measured``: the figures of its last MEASURED records (``version``, ``points``: congestion point ->
    ``[loading_measured, missing_meters]``) or None."""

    orders: list[str]
    expected: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None


def slot_state(state: KeyValueState, grid: str, slot: int) -> SlotState:
    raw = _get(state, f"rs|{grid}|{slot}")
    return SlotState([]) if raw is None else SlotState(raw["orders"], raw["expected"], raw.get("measured"))


def save_slot(state: KeyValueState, grid: str, slot: int, s: SlotState) -> None:
    state.set(f"rs|{grid}|{slot}", _j({"orders": s.orders, "expected": s.expected, "measured": s.measured}))


def mark_measured(state: KeyValueState, grid: str, slot: int, measured: dict[str, Any]) -> None:
    """Record ``slot``'s published MEASURED figures and move it from the open index to the measured one, where
    later intervals still reach it (:func:`store_interval`) until :func:`close_slot`."""
    s = slot_state(state, grid, slot)
    s.measured = measured
    save_slot(state, grid, slot, s)
    _set_open(state, grid, [x for x in open_slots(state, grid) if x != slot])
    _set_measured(state, grid, {**measured_slots(state, grid), slot: False})


def store_order(
    state: KeyValueState, grid: str, order: FlexOrder, mapped: set[str], now_ms: int, slot_ms: int
) -> bool:
    """Keep ``order`` (validated) unless a revision at least as high is stored; index it under every slot its
    current or stored revision allocates to a prosumer of ``mapped`` that has not ended by ``now_ms`` (UTC epoch
    ms) and mark the grid's orders changed. True when kept."""
    key = f"ro|{grid}|{order.order_id}"
    old = _get(state, key)
    if old is not None and old["revision"] >= order.revision:
        return False
    allocations = list(order.allocations) + (list(FlexOrder.from_avro(old).allocations) if old else [])
    slots = {a.slot_start for a in allocations if a.prosumer_id in mapped and a.slot_start + slot_ms > now_ms}
    state.set(key, _j(order.to_avro()))
    for slot in slots:
        s = slot_state(state, grid, slot)
        if order.order_id not in s.orders:
            s.orders.append(order.order_id)
            save_slot(state, grid, slot, s)
    _set_open(state, grid, [*open_slots(state, grid), *slots])
    state.set(f"rd|{grid}", b"1")
    return True


def orders_of(state: KeyValueState, grid: str, slots: Iterable[int]) -> list[FlexOrder]:
    """The stored latest revisions of the orders touching ``slots`` (each once)."""
    ids = sorted({o for slot in slots for o in slot_state(state, grid, slot).orders})
    return [FlexOrder.from_avro(raw) for o in ids if (raw := _get(state, f"ro|{grid}|{o}")) is not None]


def orders_changed(state: KeyValueState, grid: str) -> bool:
    return state.get(f"rd|{grid}") is not None


def mark_orders_seen(state: KeyValueState, grid: str) -> None:
    state.delete(f"rd|{grid}")


def store_interval(state: KeyValueState, grid: str, rec: Mapping[str, Any]) -> bool:
    """Keep a validated IntervalEnergy record of a mapped prosumer when its slot is open or measured and still
    taking corrections (per meter the latest version; an interval with no coverage, ``completeness`` 0, counts as
    missing); a measured slot is flagged for re-measurement. True when kept."""
    slot = int(rec["interval_start"])
    if rec["completeness"] <= 0:
        return False
    measured = measured_slots(state, grid)
    if slot not in measured and slot not in open_slots(state, grid):
        return False
    key = f"rm|{grid}|{slot}|{rec['prosumer_id']}"
    meters = _get(state, key) or {}
    kept = {d: v[:2] for d, v in meters.items()}
    if not merge_reading(kept, rec["device_id"], int(rec["version"]), float(rec["avg_kw"])):
        return False
    meters[rec["device_id"]] = [int(rec["version"]), float(rec["avg_kw"]), int(rec["computed_at"])]
    state.set(key, _j(meters))
    if slot in measured and not measured[slot]:
        _set_measured(state, grid, {**measured, slot: True})
    return True


def measured_again(state: KeyValueState, grid: str, slot: int) -> None:
    """Clear ``slot``'s re-measurement flag (its corrected figures are out, or did not change)."""
    _set_measured(state, grid, {**measured_slots(state, grid), slot: False})


def measured_kw(
    state: KeyValueState, grid: str, slot: int, prosumers: Iterable[str]
) -> tuple[dict[str, float], int]:
    """(prosumer id -> measured net kW, the sum over its meters' latest intervals, for the prosumers with one;
    the latest ``computed_at`` among them, UTC epoch ms, 0 when none)."""
    kw, latest = {}, 0
    for p in prosumers:
        meters = _get(state, f"rm|{grid}|{slot}|{p}")
        if meters:
            kw[p] = sum(v[1] for v in meters.values())
            latest = max([latest, *(v[2] for v in meters.values())])
    return kw, latest


def close_slot(state: KeyValueState, grid: str, slot: int, prosumers: Iterable[str]) -> None:
    """Forget ``slot``: its readings, its slot key, its place in the open or measured index, and the orders no
    open or measured slot references any more."""
    for p in prosumers:
        state.delete(f"rm|{grid}|{slot}|{p}")
    orders = slot_state(state, grid, slot).orders
    state.delete(f"rs|{grid}|{slot}")
    still_open = [s for s in open_slots(state, grid) if s != slot]
    _set_open(state, grid, still_open)
    measured = measured_slots(state, grid)
    if slot in measured:
        del measured[slot]
        _set_measured(state, grid, measured)
    referenced = {o for s in [*still_open, *measured] for o in slot_state(state, grid, s).orders}
    for o in orders:
        if o not in referenced:
            state.delete(f"ro|{grid}|{o}")
