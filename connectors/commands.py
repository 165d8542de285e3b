"""Device commands (avro/DeviceCommand.avsc) as the connector sees them: which are ours, what to execute, and
the result record (avro/DeviceCommandResult.avsc). Pure: no I/O, times passed in as UTC epoch ms.

:func:`plan_command` settles a command without touching the device (EXPIRED, INVALID, UNSUPPORTED) or turns
it into a :class:`Step`. ``SET_CURRENT_A`` with value 0 is a ``STOP`` (the flex desk's set-point 0 = stop).
:class:`SeenCommands` remembers executed command ids (a redelivered command is not executed twice) and
:class:`OffsetTracker` says which offsets may be committed while commands complete out of order.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connectors.http_poll import validate_power_amps
from connectors.models import DeviceAction


class CommandStatus(StrEnum):
    EXECUTED = "EXECUTED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    UNSUPPORTED = "UNSUPPORTED"
    INVALID = "INVALID"


@dataclass(frozen=True, slots=True)
class Command:
    """A decoded ``DeviceCommand``. ``value``: SET_CURRENT_A set-point in A per phase; times UTC epoch ms."""

    command_id: str
    device_id: str
    target_id: str
    action: DeviceAction
    value: float | None
    valid_from: int
    valid_until: int
    source: str = ""
    reason: str = ""
    issued_at: int = 0
    prosumer_id: str | None = None
    asset_id: str | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Command:
        return cls(
            command_id=rec["command_id"],
            device_id=rec["device_id"],
            target_id=rec["target_id"],
            action=DeviceAction(rec["action"]),
            value=rec.get("value"),
            valid_from=rec["valid_from"],
            valid_until=rec["valid_until"],
            source=rec.get("source", ""),
            reason=rec.get("reason", ""),
            issued_at=rec.get("issued_at", 0),
            prosumer_id=rec.get("prosumer_id"),
            asset_id=rec.get("asset_id"),
        )


@dataclass(frozen=True, slots=True)
class Step:
    """What the device is asked to do: ``action`` on unit ``target_id``; ``amps`` (A, integer 7..64) only for
    SET_CURRENT_A."""

    action: DeviceAction
    target_id: str
    amps: int | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A command settled without executing it (EXPIRED, INVALID, UNSUPPORTED or FAILED before any attempt)."""

    status: CommandStatus
    detail: str


def supported_actions(device: Any) -> frozenset[DeviceAction]:
    """Actions a device config declares (``controls``); devices of other protocols support none."""
    controls = getattr(device, "controls", None)
    if not controls:
        return frozenset()
    if device.protocol == "http":  # SpotLink: setPower, startChargebox, stopChargebox
        return frozenset(DeviceAction)
    return frozenset(controls)


def target_problem(device: Any, target_id: str) -> str | None:
    """Why ``target_id`` cannot be addressed on ``device`` (None when it can). SpotLink devices accept the
    chargeboxes listed in their controls; a Modbus device is one unit, so its target id is informational."""
    controls = getattr(device, "controls", None)
    if device.protocol == "http" and controls is not None and target_id not in controls.chargeboxes:
        known = ", ".join(sorted(controls.chargeboxes))
        return f"device {device.id} controls no chargebox {target_id!r} (controls: {known})"
    return None


def setpoint_amps(value: float | None) -> int:
    """SET_CURRENT_A value as an integer number of amperes, 0 (= stop) or 7..64; ValueError otherwise."""
    if value is None or not math.isfinite(value) or value != int(value):
        raise ValueError(f"SET_CURRENT_A needs an integer number of amperes, got {value!r}")
    amps = int(value)
    return 0 if amps == 0 else validate_power_amps(amps)


def plan_command(cmd: Command, device: Any, now: int) -> Step | Verdict:
    """Decide what to do with a command for ``device`` received at ``now`` (UTC epoch ms).

    Checked in order: stale (``now >= valid_until``: EXPIRED), bad window or value (INVALID), action or target
    the device does not have (UNSUPPORTED); otherwise the :class:`Step` to execute.
    """
    if now >= cmd.valid_until:
        return Verdict(CommandStatus.EXPIRED, f"received {now - cmd.valid_until} ms after valid_until")
    if cmd.valid_until <= cmd.valid_from:
        return Verdict(CommandStatus.INVALID, "valid_until is not after valid_from")
    action, amps = cmd.action, None
    if action is DeviceAction.SET_CURRENT_A:
        try:
            amps = setpoint_amps(cmd.value)
        except ValueError as exc:
            return Verdict(CommandStatus.INVALID, str(exc))
        if amps == 0:
            action, amps = DeviceAction.STOP, None
    if action not in supported_actions(device):
        how = f"{cmd.action} 0 A = STOP" if action is not cmd.action else str(action)
        return Verdict(
            CommandStatus.UNSUPPORTED, f"device {device.id} ({device.protocol}) has no control {how}"
        )
    problem = target_problem(device, cmd.target_id)
    if problem:
        return Verdict(CommandStatus.UNSUPPORTED, problem)
    return Step(action, cmd.target_id, amps)


def retry_allowed(now: int, delay_s: float, valid_until: int) -> bool:
    """Whether another attempt after ``delay_s`` seconds still falls before ``valid_until`` (epoch ms)."""
    return now + delay_s * 1000 < valid_until


def result_record(
    cmd: Command, status: CommandStatus, detail: str, attempts: int, executed_at: int
) -> dict[str, Any]:
    """The ``DeviceCommandResult`` record. ``attempts``: device calls made (0 when settled without any);
    ``executed_at``: UTC epoch ms of the final attempt (or of the decision)."""
    return {
        "command_id": cmd.command_id,
        "device_id": cmd.device_id,
        "target_id": cmd.target_id,
        "status": status,
        "detail": detail,
        "attempts": attempts,
        "executed_at": executed_at,
    }


class SeenCommands:
    """The last ``max_size`` command ids taken for execution (oldest forgotten first)."""

    def __init__(self, max_size: int = 100_000):
        self.max_size = max_size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, command_id: str) -> bool:
        """Remember ``command_id``; False when it was already seen (a duplicate)."""
        if command_id in self._ids:
            self._ids.move_to_end(command_id)
            return False
        self._ids[command_id] = None
        if len(self._ids) > self.max_size:
            self._ids.popitem(last=False)
        return True

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)


class OffsetTracker:
    """Offsets taken per partition and which of them are done; commands finish out of order, but an offset is
    only committable once every earlier offset taken from its partition is done (at-least-once).

    Partitions are ``(topic, partition)`` tuples. Thread-safe (the consumer's revoke callback runs in the
    thread polling Kafka).
    """

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], dict[int, bool]] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def take(self, tp: tuple[str, int], offset: int) -> None:
        with self._lock:
            self._pending.setdefault(tp, {})[offset] = False

    def done(self, tp: tuple[str, int], offset: int) -> None:
        with self._lock:
            offsets = self._pending.get(tp)
            if offsets is not None and offset in offsets:
                offsets[offset] = True

    @property
    def in_progress(self) -> int:
        with self._lock:
            return sum(not d for offs in self._pending.values() for d in offs.values())

    def committable(self, partitions: set[tuple[str, int]] | None = None) -> dict[tuple[str, int], int]:
        """Next offset to commit per partition (last contiguous done offset + 1), only where it advanced since
        the last call; the done prefix is forgotten."""
        out: dict[tuple[str, int], int] = {}
        with self._lock:
            for tp, offsets in self._pending.items():
                if partitions is not None and tp not in partitions:
                    continue
                nxt = None
                for off in sorted(offsets):
                    if not offsets[off]:
                        break
                    nxt = off + 1
                    del offsets[off]
                if nxt is not None and nxt > self._committed.get(tp, -1):
                    self._committed[tp] = nxt
                    out[tp] = nxt
        return out

    def forget(self, partitions: set[tuple[str, int]]) -> None:
        """Drop revoked partitions (their unfinished offsets are redelivered to the next owner)."""
        with self._lock:
            for tp in partitions:
                self._pending.pop(tp, None)
                self._committed.pop(tp, None)


def command_record(
    device_id: str,
    target_id: str,
    action: DeviceAction,
    value: float | None,
    valid_from: int,
    valid_until: int,
    source: str,
    issued_at: int,
    reason: str = "",
    command_id: str | None = None,
) -> dict[str, Any]:
    """A ``DeviceCommand`` record (times UTC epoch ms; ``value`` A for SET_CURRENT_A). The default id is
    deterministic: ``source/device/target/action/valid_from``."""
    return {
        "command_id": command_id or f"{source}/{device_id}/{target_id}/{action}/{valid_from}",
        "device_id": device_id,
        "target_id": target_id,
        "prosumer_id": None,
        "asset_id": None,
        "action": action,
        "value": value,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "source": source,
        "reason": reason,
        "issued_at": issued_at,
    }
