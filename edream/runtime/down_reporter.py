"""Publishes the health of a stage process that cannot publish it itself: it exited or was stopped by a signal.

The worker that started the process (:class:`~edream.runtime.workers.StageProcesses`) calls a
:class:`StageDownReporter` the moment it sees that; the record (key ``<stage>@<host>:<pid>``, the process's own key
on ``platform.stage.health.v1``) turns the stage red on every console at once instead of after
:data:`~edream.runtime.health.STALE_AFTER_MS`. A continued process overwrites it with its next own report.
"""

from __future__ import annotations

import logging
import socket
import threading

from confluent_kafka import Producer

from edream.kafka import producer_config
from edream.runtime.health import now_ms, process_down_record
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import Topology

log = logging.getLogger(__name__)


class StageDownReporter:
    """``reporter(stage, pid, status, reason)`` publishes a DOWN record (status EXITED or SUSPENDED) and waits up
    to ``flush_s`` for the broker to take it."""

    def __init__(self, settings: Settings, bootstrap: str, topic: str, flush_s: float = 2.0):
        self.settings, self.bootstrap, self.topic, self.flush_s = settings, bootstrap, topic, flush_s
        self.host = socket.gethostname()
        self._serde = Serde(settings)
        self._producer: Producer | None = None
        self._lock = threading.Lock()

    def __call__(self, stage: str, pid: int, status: str, reason: str) -> None:
        worker = f"{self.host}:{pid}"
        rec = process_down_record(stage, worker, status, reason, now_ms())
        with self._lock:
            if self._producer is None:
                self._producer = Producer(producer_config(self.settings, self.bootstrap))
            value = self._serde.encode("StageHealth", rec, self.topic)
            self._producer.produce(self.topic, key=f"{stage}@{worker}".encode(), value=value)
            left = self._producer.flush(self.flush_s)
        if left:
            log.warning("stage %s %s: health record not delivered within %.0f s", stage, status, self.flush_s)

    def close(self) -> None:
        """Deliver what is pending (call before the broker stops)."""
        with self._lock:
            if self._producer is not None:
                self._producer.flush(self.flush_s)
                self._producer = None


def down_reporter(settings: Settings, topology: Topology, bootstrap: str) -> StageDownReporter | None:
    """The reporter on the topology's one StageHealth topic (None when it declares none or several)."""
    topics = topology.topic_for_schema("StageHealth")
    return StageDownReporter(settings, bootstrap, topics[0].name) if len(topics) == 1 else None
