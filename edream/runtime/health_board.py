"""The platform-wide view of stage health: every stage of every worker, from ``platform.stage.health.v1``.

The process that serves the web API follows the compacted health topic (:class:`~edream.runtime.global_view.
GlobalView`) and shows each stage's latest record in ``/api/status`` (``stages``), ``edream status``, the dashboard
and ``/metrics`` (``edream_stage_*`` gauges, which the Grafana panels and the alert rules in ``docker/`` read).
A stage whose record is older than :data:`~edream.runtime.health.STALE_AFTER_MS` is DOWN: its process died, is
stopped (SIGSTOP) or cannot reach the broker. A record its worker published for an exited process (EXITED) is
listed until the restarted process on the same host reports UP (:func:`without_replaced`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import Gauge

from edream.kafka import consumer_config
from edream.runtime.global_view import GlobalView
from edream.runtime.health import GONE_AFTER_MS, effective_status, now_ms
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from edream.topology import Topology

log = logging.getLogger(__name__)
#: how long the board waits before it tries again to follow the health topic, s
RETRY_S = 10.0

LABELS = ["stage", "worker"]
STAGE_UP = Gauge("edream_stage_up", "1 when the stage reports UP, 0 when RETRYING or DOWN", LABELS)
STAGE_IN = Gauge("edream_stage_events_in_per_second", "Records processed per second", LABELS)
STAGE_OUT = Gauge("edream_stage_events_out_per_second", "Records emitted per second", LABELS)
STAGE_LAG = Gauge(
    "edream_stage_lag_messages", "Unconsumed messages on the stage's assigned partitions", LABELS
)
STAGE_DEAD = Gauge(
    "edream_stage_dead_letters", "Records dead-lettered since the stage process started", LABELS
)


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else int(value)


def _host(worker_id: str) -> str:
    return worker_id.rpartition(":")[0]


def without_replaced(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop the record of an exited stage process (reported EXITED by its worker) once a process of the same stage
    on the same host reported UP after it: the worker restarted it. Times are UTC epoch ms."""

    def replaced(r: dict[str, Any]) -> bool:
        return r["reported_status"] == "EXITED" and any(
            o["stage"] == r["stage"]
            and o["status"] == "UP"
            and _host(o["worker_id"]) == _host(r["worker_id"])
            and (o["updated_at"] or 0) > (r["updated_at"] or 0)
            for o in rows
        )

    return [r for r in rows if not replaced(r)]


class StageHealthBoard:
    def __init__(self, settings: Settings, topology: Topology, bootstrap: str):
        topics = topology.topic_for_schema("StageHealth")
        self.topic = topics[0].name if len(topics) == 1 else None
        self.settings, self.bootstrap = settings, bootstrap
        self.serde = Serde(settings)
        self.view: GlobalView | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Read the last :data:`GONE_AFTER_MS` of health records (older ones are never shown), then follow the topic.
        If that fails (broker away or slow), status works without stage rows and the board tries again every
        :data:`RETRY_S` in the background until it follows the topic."""
        if self.topic is not None and not self._try_start():
            threading.Thread(target=self._retry, daemon=True, name="health-board-start").start()

    def _try_start(self) -> bool:
        try:
            conf = consumer_config(self.settings, "health-board", self.bootstrap)
            self.view = GlobalView(conf, self.topic, since_ms=GONE_AFTER_MS).start(timeout_s=30)
            return True
        except Exception as exc:  # noqa: BLE001 - status must work without it
            log.warning(
                "stage health not followed yet (%s): %s; retrying in %.0f s", self.topic, exc, RETRY_S
            )
            return False

    def _retry(self) -> None:
        while not self._stopped.wait(RETRY_S):
            if self._try_start():
                log.info("stage health followed (%s)", self.topic)
                if self._stopped.is_set() and self.view is not None:
                    self.view.stop()
                return

    def stop(self) -> None:
        self._stopped.set()
        if self.view is not None:
            self.view.stop()

    def rows(self) -> list[dict[str, Any]]:
        """Latest record per stage and worker, with the status an operator should see."""
        if self.view is None:
            return []
        at, out = now_ms(), []
        for _key, value in self.view.items():
            try:
                rec = self.serde.decode(value, self.topic)[1]
            except DecodeError:
                continue
            for k in ("last_error_at", "last_tick_at", "updated_at"):
                rec[k] = _ms(rec.get(k))
            if at - (rec["updated_at"] or 0) > GONE_AFTER_MS:
                continue
            rec["reported_status"] = rec["status"]
            rec["status"] = effective_status(rec, at)
            out.append(rec)
        return sorted(without_replaced(out), key=lambda r: (r["stage"], r["worker_id"]))

    def export_metrics(self) -> None:
        for gauge in (STAGE_UP, STAGE_IN, STAGE_OUT, STAGE_LAG, STAGE_DEAD):
            gauge.clear()
        for r in self.rows():
            labels = (r["stage"], r["worker_id"])
            STAGE_UP.labels(*labels).set(1 if r["status"] == "UP" else 0)
            STAGE_IN.labels(*labels).set(r["in_per_s"])
            STAGE_OUT.labels(*labels).set(r["out_per_s"])
            STAGE_LAG.labels(*labels).set(r["lag"] or 0)
            STAGE_DEAD.labels(*labels).set(r["dead_letters"])
