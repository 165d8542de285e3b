"""A job run every so often on a daemon thread of its own (the UFTP gateway's D-Prognosis rounds)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``job`` ``first_after_s`` seconds after :meth:`start`, then every ``interval_s`` seconds (from the end of
    the previous call) until :meth:`stop`. An exception of one call is logged and the next call runs as planned:
    the job never dies of one bad round."""

    def __init__(self, job: Callable[[], Any], interval_s: float, first_after_s: float, name: str):
        if interval_s <= 0:
            raise ValueError(f"{name}: interval must be positive, got {interval_s} s")
        self.job, self.interval_s, self.first_after_s, self.name = job, interval_s, first_after_s, name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def start(self) -> Periodic:
        self._thread.start()
        return self

    def _loop(self) -> None:
        wait = self.first_after_s
        while not self._stop.wait(wait):
            try:
                self.job()
            except Exception:  # noqa: BLE001 - one failed round is logged; the next one runs
                log.exception("%s: round failed, next in %.0f s", self.name, self.interval_s)
            wait = self.interval_s

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
