"""Dispatch through the connectors (LL-UC07/08): EV charger current set-points from flexibility orders.

A prosumer's allocation is met first by its *controllable* EV chargers (enrolled with a connector ``device_id`` and
``target_id``), each up to its capability in the order's direction; the rest is left to the home energy manager,
which follows the FlexOrder event itself. :class:`CommandPlanner` is driven by time (the desk calls :meth:`due`
with event time from readings and with the wall clock on timer ticks):

* when a slot starts (or a revision changes a running slot), every controllable charger with an allocation gets
  ``SET_CURRENT_A`` = the set-point delivering its share (:func:`~streams.flex.dispatch.ev_setpoint_a`, 0 = stop),
  valid for the slot;
* when a charger had a set-point and its next running slot has none (order over, or released after a deviation),
  it gets its nominal current back (valid for ``restore_valid_ms``).

Ids are deterministic (order, revision, asset, slot, amperes), so a replay re-emits identical commands that the
connector executes once. Times are UTC epoch ms; kW are slot averages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.flex.dispatch import ev_setpoint_a
from streams.flex.enrolment import EvCharger, ProsumerRecord, Registry
from streams.flex.ids import stable_id, window_id
from streams.flex.model import Direction, SlotOutlook
from streams.flex.orders import FlexOrder

SOURCE = "flex"


@dataclass(frozen=True)
class DeviceCommand:
    """DeviceCommand.avsc: ``value`` is amperes per phase for SET_CURRENT_A (0 = stop charging)."""

    command_id: str
    device_id: str
    target_id: str
    prosumer_id: str
    asset_id: str
    action: str
    value: float | None
    valid_from: int
    valid_until: int
    reason: str
    issued_at: int

    def to_avro(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "device_id": self.device_id,
            "target_id": self.target_id,
            "prosumer_id": self.prosumer_id,
            "asset_id": self.asset_id,
            "action": self.action,
            "value": self.value,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "source": SOURCE,
            "reason": self.reason,
            "issued_at": self.issued_at,
        }


def ev_shares(
    record: ProsumerRecord, alloc_kw: float, direction: Direction, outlook: SlotOutlook, slot_minutes: int
) -> list[tuple[EvCharger, float]]:
    """(charger, kW) for the record's controllable chargers: the allocation is spread over them in enrolment
    order, each up to its capability in ``direction``; what remains is the rest of the household's part."""
    out, left = [], max(0.0, alloc_kw)
    for a in record.assets:
        if isinstance(a, EvCharger) and a.controllable:
            take = min(left, a.capability(outlook, slot_minutes).for_direction(direction))
            out.append((a, take))
            left -= take
    return out


@dataclass
class _Active:
    """The set-point a charger currently follows because of an order."""

    command: DeviceCommand
    charger: EvCharger
    slot_end: int


@dataclass
class CommandPlanner:
    """See module doc. ``restore_valid_ms``: validity of a restore-to-nominal command, ms."""

    restore_valid_ms: int = 15 * 60_000
    now: int = 0
    active: dict[tuple[str, str], _Active] = field(
        default_factory=dict
    )  # (device_id, target_id) -> set-point
    sent: dict[str, int] = field(default_factory=dict)  # command_id -> valid_until (pruned after it)

    def due(
        self, now: int, orders: Iterable[FlexOrder], registry: Registry, outlook: Any
    ) -> list[DeviceCommand]:
        """Commands due at ``now`` (ignored unless it moves time forward) for the latest revision of ``orders``."""
        if now <= self.now:
            return []
        self.now = now
        out: list[DeviceCommand] = []
        running: set[tuple[str, str]] = set()
        for order in orders:
            if order.status == "CANCELLED":
                continue
            for a in order.allocations:
                if not a.slot_start <= now < a.slot_start + order.slot_ms:
                    continue
                rec = registry.get(a.prosumer_id)
                if rec is None:
                    continue
                for charger, kw in ev_shares(
                    rec, a.kw, order.direction, outlook(a.prosumer_id, a.slot_start), order.slot_minutes
                ):
                    key = (charger.device_id, charger.target_id)
                    running.add(key)  # type: ignore[arg-type]
                    amps = ev_setpoint_a(charger, order.direction, kw)
                    cid = stable_id(
                        "cmd", order.order_id, order.revision, charger.asset_id, a.slot_start, amps
                    )
                    slot_end = a.slot_start + order.slot_ms
                    reason = (
                        f"order {order.order_id} rev {order.revision} slot "
                        f"{window_id(a.slot_start, order.slot_minutes)} {order.direction} {kw:.3f} kW"
                    )
                    cmd = self._command(
                        cid, rec, charger, amps, max(a.slot_start, now), slot_end, reason, now
                    )
                    if cmd is not None:
                        out.append(cmd)
                        self.active[key] = _Active(cmd, charger, slot_end)  # type: ignore[index]
                    elif key in self.active:
                        self.active[key].slot_end = slot_end  # type: ignore[index]
        for key in [k for k, act in self.active.items() if k not in running and act.slot_end <= now]:
            act = self.active.pop(key)
            c = act.command
            cid = stable_id("cmd", "restore", c.command_id)
            nominal = act.charger.nominal_current_a
            reason = f"restore nominal {nominal} A after {c.reason}"
            cmd = self._command(
                cid,
                None,
                act.charger,
                nominal,
                now,
                now + self.restore_valid_ms,
                reason,
                now,
                prosumer_id=c.prosumer_id,
            )
            if cmd is not None:
                out.append(cmd)
        return out

    def _command(
        self,
        cid: str,
        rec: ProsumerRecord | None,
        charger: EvCharger,
        amps: int,
        valid_from: int,
        valid_until: int,
        reason: str,
        now: int,
        prosumer_id: str | None = None,
    ) -> DeviceCommand | None:
        if cid in self.sent:
            return None
        self.sent[cid] = valid_until
        return DeviceCommand(
            command_id=cid,
            device_id=charger.device_id or "",
            target_id=charger.target_id or "",
            prosumer_id=rec.prosumer_id if rec else prosumer_id or "",
            asset_id=charger.asset_id,
            action="SET_CURRENT_A",
            value=float(amps),
            valid_from=valid_from,
            valid_until=valid_until,
            reason=reason,
            issued_at=now,
        )

    def export_state(self) -> dict[str, Any]:
        """JSON-ready state (inverse of :meth:`restore_state`), for stages that keep a planner per prosumer."""
        return {
            "now": self.now,
            "active": [[vars(a.command), vars(a.charger), a.slot_end] for a in self.active.values()],
            "sent": self.sent,
        }

    def restore_state(self, state: dict[str, Any]) -> None:
        self.now, self.sent, self.active = int(state["now"]), dict(state["sent"]), {}
        for command, charger, slot_end in state["active"]:
            act = _Active(DeviceCommand(**command), EvCharger(**charger), slot_end)
            self.active[(act.charger.device_id, act.charger.target_id)] = act  # type: ignore[index]

    def prune(self, before: int) -> None:
        """Forget ids of commands that expired before ``before`` (they can no longer be re-derived as due)."""
        for cid in [c for c, until in self.sent.items() if until < before]:
            del self.sent[cid]
