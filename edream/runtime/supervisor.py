"""Keeps a stage running on this process and reports its health.

:class:`StageSupervisor` builds a :class:`~edream.runtime.engine.StageRun` and runs it; when the run fails (broker
stalled or gone, a :class:`~edream.runtime.contract.TransientError`, anything unexpected) the stage is marked
RETRYING with the error, and a fresh run starts after a backoff (:func:`edream.retry.backoff`), forever, from the
last committed offsets and the state in RocksDB/changelog. A stage therefore never dies silently: it is UP,
RETRYING with its last error, or (when the process is gone) DOWN because its health record went stale.

It also starts the stage's clock (ticks) and publishes the stage's health record every ``HEALTH_EVERY_S``, and at
once (within ``CHECK_EVERY_S``) when its status or last error changes.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Producer

from edream.kafka import consumer_config, producer_config
from edream.retry import backoff
from edream.runtime.clock import Clock, ensure_clock_topic
from edream.runtime.contract import StageSpec
from edream.runtime.engine import StageRun, group_id
from edream.runtime.global_view import GlobalView
from edream.runtime.health import StageHealth
from edream.serde import Serde
from edream.settings import Settings

log = logging.getLogger(__name__)

#: the health record's period (s): each record is a stored batch that the health board's every fetch lists on the
#: embedded S3 broker, so the rates it carries are over 5 s and a change of status is published at once instead
HEALTH_EVERY_S = 5.0
#: how often the health loop looks for a hang, a stuck stop and a change of status (s)
CHECK_EVERY_S = 1.0
#: a run whose consumer failed must have stopped within this (s); else its stop hangs on the broker (seen: 7 min
#: under a failing embedded broker) and the process exits through ``on_hang`` so that its worker restarts it
STOP_DEADLINE_S = 60.0
#: tick period of stages that asked for none (ms): ticks are how an idle stage shows it is alive
LIVENESS_TICK_MS = 5_000


class StageSupervisor:
    def __init__(
        self,
        spec: StageSpec,
        settings: Settings,
        deadletter_topic: str,
        health_topic: str | None,
        partitions: int,
        handle_signals: bool = True,
        on_hang: Callable[[], None] | None = None,
    ):
        self.spec, self.settings = spec, settings
        self.on_hang = on_hang
        self.deadletter_topic, self.health_topic, self.partitions = deadletter_topic, health_topic, partitions
        self.handle_signals = handle_signals
        self.health = StageHealth(spec.name)
        self.stop_event = threading.Event()
        self.current: StageRun | None = None
        self._serde = Serde(settings)

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.edream_data_dir) / "state" / self.spec.name

    def run(self) -> None:
        """Run until :meth:`stop` (or SIGTERM/SIGINT when this is the process's main thread)."""
        if not self.settings.runtime_trust_local_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)  # restored from the changelog instead
        # every stage gets ticks: they drive its timers and prove its loop alive (health UP) while input is idle
        conf = producer_config(self.settings, self.settings.kafka_bootstrap_servers)
        backoff(f"clock topic of {self.spec.name}", sleep=self.stop_event.wait)(
            ensure_clock_topic, self.settings, group_id(self.settings, self.spec.name), self.partitions
        )
        tick_ms = self.spec.tick_ms or LIVENESS_TICK_MS
        clock = Clock(conf, group_id(self.settings, self.spec.name), self.partitions, tick_ms).start()
        self.clock = clock
        reporter = threading.Thread(target=self._report, name=f"health-{self.spec.name}", daemon=True)
        reporter.start()
        self.views: dict[str, GlobalView] = {}
        try:
            backoff(f"stage {self.spec.name}", sleep=self.stop_event.wait)(self._run_once)
        finally:
            self.stop_event.set()
            for view in self.views.values():
                view.stop()
            clock.stop()
            reporter.join(CHECK_EVERY_S + 1)
            self.health.status = "STOPPED"
            self._publish_health()

    def _run_once(self) -> None:
        if self.stop_event.is_set():
            return
        if self.health.status == "RETRYING":
            self.health.restarts += 1
        self.health.run_started()
        try:
            self._run_stage()
        finally:
            self.health.run_ended()  # no run in progress while the backoff waits: nothing to find hung
        # a normal return is a requested stop (stop() or a signal)
        self.stop_event.set()

    def _run_stage(self) -> None:
        try:
            for topic in self.spec.views:
                if topic not in self.views:
                    conf = consumer_config(
                        self.settings, f"{self.spec.name}-view", self.settings.kafka_bootstrap_servers
                    )
                    self.views[topic] = GlobalView(conf, topic).start()
            self.current = StageRun(
                self.spec,
                self.settings,
                self.health,
                self.state_dir,
                self.deadletter_topic,
                self.partitions,
                handle_signals=self.handle_signals,
                views=dict(self.views),
            )
            if self.stop_event.is_set():  # stop() came while the run was being built: it never saw this run
                self.current.stop()
            try:
                self.current.run()
            finally:
                self.current.failed_at = None  # it has stopped: no stop can hang any more
        except Exception as exc:
            self.health.transient(exc)
            log.error("stage %s stopped: %s: %s", self.spec.name, type(exc).__name__, exc)
            # the failed run's local RocksDB may hold writes its changelog never got (Quix then refuses to open
            # it: InvalidStoreChangelogOffset); the changelog is the truth, so the next run restores from it
            shutil.rmtree(self.state_dir, ignore_errors=True)
            raise

    def stop(self) -> None:
        self.stop_event.set()
        if self.current is not None:
            self.current.stop()

    # -- health ------------------------------------------------------------------------------------------------
    def _report(self) -> None:
        producer, published, last_at = None, None, 0.0
        while not self.stop_event.wait(CHECK_EVERY_S):
            hung_s = self._hung_for()
            if hung_s is not None:
                self.health.hung(hung_s)
            elif (stuck_s := self._stuck_stopping_for()) is not None:
                hung_s = stuck_s
                self.health.stuck_stopping(stuck_s)
            seen = (self.health.status, self.health.last_error)
            if seen == published and time.monotonic() - last_at < HEALTH_EVERY_S:
                continue
            if self.current is not None:
                self.health.lag = self.current.lag()
            producer, published, last_at = self._publish_health(producer), seen, time.monotonic()
            if hung_s is not None and self.on_hang is not None:
                log.error("stage %s: %s", self.spec.name, self.health.last_error)
                if producer is not None:
                    producer.flush(2)
                self.on_hang()
        if producer is not None:
            producer.flush(2)

    def _stuck_stopping_for(self) -> float | None:
        """Seconds since the current run's consumer failed, when its stop has taken over ``STOP_DEADLINE_S``."""
        failed_at = getattr(self.current, "failed_at", None)
        if failed_at is None:
            return None
        since = time.monotonic() - failed_at
        return since if since > STOP_DEADLINE_S else None

    def _hung_for(self) -> float | None:
        """Seconds the current run has handled nothing (no record, no tick, no restored changelog record) since its
        last progress, although the broker took this stage's ticks since (a running loop would have handled them),
        when that exceeds ``runtime_hang_after_s``; or since it started, when it has handled nothing yet and that
        exceeds ``runtime_start_deadline_s``. None otherwise: while the broker is away (a stall, shown by the lag
        and the missing ticks, not a hang) and between runs.

        A start is bounded apart, and more loosely: on a loaded machine a first start beside every other stage took
        over 120 s (creating topics, joining the group), while a retry after a consumer failure once sat silent for
        good (ci79); restoring a large state is progress."""
        clock, health = getattr(self, "clock", None), self.health
        if health.progress_at is not None:
            since, limit = health.progress_at, self.settings.runtime_hang_after_s
        else:
            since, limit = health.run_started_at, self.settings.runtime_start_deadline_s
        if clock is None or clock.delivered_at is None or since is None:
            return None
        silent = clock.delivered_at - since
        return silent if silent > limit else None

    def _publish_health(self, producer: Producer | None = None) -> Producer | None:
        if self.health_topic is None:
            return producer
        try:
            if producer is None:
                producer = Producer(producer_config(self.settings, self.settings.kafka_bootstrap_servers))
            rec = self.health.snapshot()
            key = f"{self.spec.name}@{self.health.worker}".encode()
            producer.produce(
                self.health_topic, key=key, value=self._serde.encode("StageHealth", rec, self.health_topic)
            )
            producer.poll(0)
        except Exception as exc:  # noqa: BLE001 - health must never take the stage down
            log.debug("health of %s not published: %s", self.spec.name, exc)
        return producer
