"""Faults applied to processes: ``kill -9`` and a stall (SIGSTOP, then SIGCONT after ``seconds``).

A stall always ends with SIGCONT, also when the waiting is interrupted, so the suite never leaves a stopped
process behind. Each applied fault is a :class:`Fault` record (what, which pid, when, how long the platform took
to be healthy again).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    """One fault. ``duration_s``: how long a stall lasted (0 for a kill); ``recovery_s``: seconds from the end of
    the fault until the platform was healthy again (every stage UP, status API answering), None if it never was."""

    kind: str  # kill9 | stall
    target: str  # platform | tansu-broker | broker-object-store | anvil | stage-<name>
    pid: int
    at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    recovery_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kill9(target: str, pid: int) -> Fault:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return Fault("kill9", target, pid)


def stall(target: str, pid: int, seconds: float) -> Fault:
    """SIGSTOP ``pid`` for ``seconds``, then SIGCONT (always)."""
    fault = Fault("stall", target, pid)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    fault.duration_s = round(time.monotonic() - t0, 1)
    return fault
