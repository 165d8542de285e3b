"""Health of a running stage: up/down, last error, events in/out and their rates, lag.

The runtime updates a :class:`StageHealth` from the processing thread; :meth:`StageHealth.snapshot` gives the
``StageHealth`` record (``avro/StageHealth.avsc``) that the supervisor publishes every few seconds on
``platform.stage.health.v1`` (compacted, key ``<stage>@<worker>``), so ``/api/status``, ``edream status``, the
dashboard and ``/metrics`` of any process see every stage of every worker.

A stage process cannot report its own death: the worker that started it (:mod:`edream.runtime.workers`) publishes
a :func:`process_down_record` for it at once (status EXITED when the process is gone, SUSPENDED when it was
stopped by a signal); a stage that hangs in any other way turns DOWN when its reports stop for ``STALE_AFTER_MS``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

#: a stage whose last report is older than this is shown as DOWN (its process is gone or stalled), in ms; the
#: supervisor reports every 5 s (and at once on a change of status), so this is 4 missed reports
STALE_AFTER_MS = 20_000
#: statuses the worker publishes for a stage process it saw exit or stop: the operator sees them as DOWN
PROCESS_DOWN = frozenset({"EXITED", "SUSPENDED"})
#: a stage's own report that its processing loop made no progress while its clock ticked (the process then exits)
HUNG = "HUNG"
#: statuses an operator sees as DOWN even while the record is fresh
DOWN_STATUSES = PROCESS_DOWN | {HUNG}
#: a worker's stage silent for longer than this is gone (killed or scaled down) and no longer listed, in ms
GONE_AFTER_MS = 600_000


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StageHealth:
    stage: str
    worker: str = field(default_factory=worker_id)
    status: str = "STARTING"
    last_error: str | None = None
    last_error_at: int | None = None
    events_in: int = 0
    events_out: int = 0
    dead_letters: int = 0
    restarts: int = 0
    lag: int | None = None
    last_tick_at: int | None = None
    busy_s: float = 0.0
    #: time.monotonic() of the processing loop's last handled record, tick or restored changelog record in the
    #: current run (None: the run has handled nothing yet: it is starting or joining its group)
    progress_at: float | None = None
    #: time.monotonic() at which the current run started (None: no run is in progress, e.g. between retries)
    run_started_at: float | None = None
    _last: tuple[int, int, float] = (0, 0, 0.0)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_in(self, n: int) -> None:
        self.events_in += n

    def progressed(self) -> None:
        """The processing loop handled something: not hung."""
        self.progress_at = time.monotonic()

    def run_started(self) -> None:
        self.progress_at, self.run_started_at = None, time.monotonic()

    def run_ended(self) -> None:
        self.progress_at, self.run_started_at = None, None

    def processed(self, n_out: int, seconds: float) -> None:
        self.progressed()
        self.events_out += n_out
        self.busy_s += seconds
        if self.status != "UP":
            self.status = "UP"

    def ticked(self, tick_ms: int) -> None:
        self.progressed()
        self.last_tick_at = tick_ms
        if self.status != "UP":
            self.status = "UP"

    def failed_record(self, exc: BaseException) -> None:
        self.progressed()
        self.dead_letters += 1
        self._error(exc)

    def transient(self, exc: BaseException) -> None:
        self.status = "RETRYING"
        self._error(exc)

    def _error(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.last_error_at = now_ms()

    def hung(self, seconds: float) -> None:
        self.status = HUNG
        if self.progress_at is None:
            self.last_error = (
                f"its run has handled nothing for {seconds:.0f} s since it started while its clock ticked "
                "(stuck creating topics, joining its group or restoring state)"
            )
        else:
            self.last_error = f"processing loop made no progress for {seconds:.0f} s while its clock ticked"
        self.last_error_at = now_ms()

    def stuck_stopping(self, seconds: float) -> None:
        self.status = HUNG
        self.last_error = f"its run failed {seconds:.0f} s ago and has not stopped (a broker call hangs)"
        self.last_error_at = now_ms()

    def running(self) -> None:
        self.status = "UP"

    def snapshot(self) -> dict[str, Any]:
        """The StageHealth record, with rates over the time since the previous snapshot."""
        with self._lock:
            t = time.monotonic()
            n_in, n_out, t0 = self._last
            dt = t - t0 if t0 else 0.0
            self._last = (self.events_in, self.events_out, t)
        return {
            "stage": self.stage,
            "worker_id": self.worker,
            "status": self.status,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "events_in": self.events_in,
            "events_out": self.events_out,
            "dead_letters": self.dead_letters,
            "restarts": self.restarts,
            "in_per_s": (self.events_in - n_in) / dt if dt > 0 else 0.0,
            "out_per_s": (self.events_out - n_out) / dt if dt > 0 else 0.0,
            "lag": self.lag,
            "last_tick_at": self.last_tick_at,
            "updated_at": now_ms(),
        }


def effective_status(record: dict[str, Any], at_ms: int | None = None) -> str:
    """The status an operator should see: DOWN when the stage stopped reporting (killed, stalled, broker away)."""
    at = now_ms() if at_ms is None else at_ms
    updated = record.get("updated_at") or 0
    if hasattr(updated, "timestamp"):
        updated = int(updated.timestamp() * 1000)
    if at - updated > STALE_AFTER_MS or record.get("status") in DOWN_STATUSES:
        return "DOWN"
    return str(record.get("status", "DOWN"))


def process_down_record(stage: str, worker: str, status: str, reason: str, at_ms: int) -> dict[str, Any]:
    """The StageHealth record a worker publishes for its stage process ``worker`` (``host:pid``) that exited or
    was stopped (``status`` in :data:`PROCESS_DOWN`); counters are unknown to the parent and left at 0."""
    if status not in PROCESS_DOWN:
        raise ValueError(f"status must be one of {sorted(PROCESS_DOWN)}, got {status!r}")
    return {
        "stage": stage,
        "worker_id": worker,
        "status": status,
        "last_error": reason[:500],
        "last_error_at": at_ms,
        "events_in": 0,
        "events_out": 0,
        "dead_letters": 0,
        "restarts": 0,
        "in_per_s": 0.0,
        "out_per_s": 0.0,
        "lag": None,
        "last_tick_at": None,
        "updated_at": at_ms,
    }
