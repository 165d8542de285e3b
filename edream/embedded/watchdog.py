"""Keeps the embedded children of ``edream run`` running: a child that exits (killed, crashed) is started again.

Without it a ``kill -9`` of the broker (or its object store, or anvil) left the platform running against a dead
address for good: every stage DOWN, producers retrying forever, and Ctrl-C hanging on the dead broker. The
watchdog checks each child every ``period_s`` seconds, in the order given (object store before broker), and
restarts a dead one on the same ports and data (its argv is fixed at construction), so clients reconnect to the
address they already have and the durable log, offsets and chain state are found again. A restart that fails is
retried with exponential backoff (1 s .. 30 s), logged each time.

Children are started from the watchdog's thread, which lives as long as the platform: their parent-death signal
(:func:`edream.embedded.process.die_with_parent`) still fires when the platform dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from edream.retry import Delays

log = logging.getLogger(__name__)

BACKOFF_MIN_S, BACKOFF_MAX_S = 1.0, 30.0


@dataclass
class Watched:
    """One child: how to tell it runs and how to start it again (blocking until it is ready)."""

    name: str
    running: Callable[[], bool]
    restart: Callable[[], object]
    restarts: int = 0
    delays: Delays = field(default_factory=lambda: Delays(BACKOFF_MIN_S, BACKOFF_MAX_S, jitter=False))
    next_try: float = field(default=0.0)


class ChildWatchdog:
    def __init__(self, watched: list[Watched], period_s: float = 1.0):
        self.watched = watched
        self.period_s = period_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="child-watchdog", daemon=True)

    def start(self) -> ChildWatchdog:
        if self.watched:
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            with self._lock:
                for w in self.watched:
                    if self._stop.is_set():
                        return
                    if not w.running():
                        self._revive(w)

    def _revive(self, w: Watched) -> None:
        now = time.monotonic()
        if now < w.next_try:
            return
        log.error("embedded %s exited; starting it again (restart %d)", w.name, w.restarts + 1)
        try:
            w.restart()
        except Exception as exc:  # noqa: BLE001 - retried with backoff, never raised into the platform
            wait = w.delays.next()
            log.error("embedded %s did not start again: %s; next try in %.0f s", w.name, exc, wait)
            w.next_try = now + wait
            return
        w.restarts += 1
        w.delays.reset()
        w.next_try = 0.0
        log.warning("embedded %s is running again", w.name)

    def restarts(self) -> dict[str, int]:
        return {w.name: w.restarts for w in self.watched}

    def stop(self) -> None:
        """No restart after this returns (a restart under way finishes first), so the children can be stopped."""
        self._stop.set()
        with self._lock:
            pass
        if self._thread.is_alive():
            self._thread.join(2)
