"""Hosting of blocking service loops (confluent-kafka consumers, web3 calls) inside the platform's Faust worker.

A *service* is built by a ``build()`` callable (retried while a dependency is unavailable) and is either
*stepped* (``step(timeout_s)`` + ``close()``: one batch per call, offsets committed by the service itself) or
*run* (``run(stop: threading.Event)`` until the event is set). :func:`host` registers a :class:`mode.Service`
with the Faust app that starts the loop on its own daemon thread when the worker starts and sets the stop event
and joins the thread when the worker stops, so each service leaves its consumer group cleanly.

ClickHouse calls of such threads go through the worker's single ClickHouse thread (chDB is in-process and allows
one user) via :class:`SerialClient`. :func:`topic_names` maps canonical topic names (``meter.readings.raw.v1``) to
the names the loaded topology uses (which may carry a suffix after the version, e.g. in tests).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from mode import Service

log = logging.getLogger(__name__)
_CANONICAL = re.compile(r"^(.+?\.v\d+)(?:\..*)?$")


class SerialClient:
    """Proxy of a clickhouse-connect client whose method calls run on ``executor`` (and are waited for)."""

    def __init__(self, client: Any, executor: Executor):
        self._client, self._executor = client, executor

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._executor.submit(attr, *args, **kwargs).result()

        return call


def bootstrap_of(app: Any) -> str:
    """``host:port`` of the Faust app's broker (the embedded one when ``edream run`` started it)."""
    broker = app.conf.broker[0]
    return f"{broker.host}:{broker.port}"


def topic_names(topology: Any) -> dict[str, str]:
    """Canonical topic name -> the topology's name for it (identity unless the topology adds a suffix)."""
    out = {}
    for t in topology.topics:
        m = _CANONICAL.match(t.name)
        out[m.group(1) if m else t.name] = t.name
    return out


def run_loop(
    build: Callable[[], Any], stop: threading.Event, retry_s: float = 5.0, name: str = "service"
) -> None:
    """Build the service (retrying while it fails) and step or run it until ``stop`` is set."""
    svc = None
    while not stop.is_set() and svc is None:
        try:
            svc = build()
        except Exception as exc:  # noqa: BLE001 - chain/broker not up yet, no key...: keep the worker alive
            log.warning("%s not started: %s; retrying in %.0fs", name, exc, retry_s)
            stop.wait(retry_s)
    if svc is None:
        return
    if not hasattr(svc, "step"):
        svc.run(stop)
        return
    try:
        while not stop.is_set():
            try:
                svc.step(timeout_s=1.0)
            except Exception:  # noqa: BLE001 - nothing was committed: the batch is replayed on restart
                log.exception(
                    "%s step failed; stopping the service (offsets of the batch not committed)", name
                )
                raise
    finally:
        svc.close()


class HostedThread:
    """One service loop on a daemon thread; ``start()``/``stop()`` are idempotent."""

    def __init__(self, name: str, build: Callable[[], Any], retry_s: float = 5.0):
        self.name, self.build, self.retry_s = name, build, retry_s
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=run_loop,
                args=(self.build, self.stop_event, self.retry_s, self.name),
                name=self.name,
                daemon=True,
            )
            self.thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout_s)


def host(app: Any, name: str, build: Callable[[], Any], retry_s: float = 5.0) -> HostedThread:
    """Run ``build()``'s service on a thread that starts and stops with the Faust worker (``app.service``)."""
    hosted = HostedThread(name, build, retry_s)

    class _Hosted(Service):
        @property
        def shortlabel(self) -> str:
            return f"Hosted[{name}]"

        @property
        def label(self) -> str:
            return self.shortlabel

        async def on_start(self) -> None:
            hosted.start()

        async def on_stop(self) -> None:
            await asyncio.get_running_loop().run_in_executor(None, hosted.stop)

    app.service(_Hosted)
    return hosted
