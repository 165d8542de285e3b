"""Prometheus metrics every edream process exposes with the same names (prometheus-client).

Names and labels are fixed here so the Grafana dashboard (``docker/grafana/dashboards/edream.json``) works for
any process: ``component`` is the process role (``worker``, ``connector``, ``anchorer``...), ``stage`` a step
inside it. Units are in the names (seconds, messages). Use :func:`process_metrics` once per process and either
serve them on the Faust web server (``/metrics``) or with :func:`serve_metrics` on a port of their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

#: Latency buckets in seconds: 1 ms .. 60 s.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

METRIC_NAMES = (
    "edream_events_in_total",
    "edream_events_out_total",
    "edream_errors_total",
    "edream_processing_seconds",
    "edream_event_lag_seconds",
    "edream_consumer_lag_messages",
    "edream_buffer_size",
    "edream_chain_confirmations",
)


@dataclass(frozen=True)
class ProcessMetrics:
    """The standard metric families, bound to one registry."""

    registry: CollectorRegistry
    events_in: Counter
    events_out: Counter
    errors: Counter
    processing: Histogram
    event_lag: Histogram
    consumer_lag: Gauge
    buffer_size: Gauge
    chain_confirmations: Gauge

    @contextmanager
    def timed(self, component: str, stage: str) -> Iterator[None]:
        """Observe the wall time of the block in ``edream_processing_seconds``; count an error if it raises."""
        t0 = time.perf_counter()
        try:
            yield
        except Exception as exc:
            self.errors.labels(component, stage, type(exc).__name__).inc()
            raise
        finally:
            self.processing.labels(component, stage).observe(time.perf_counter() - t0)

    def observe_event_time(
        self, component: str, topic: str, event_ms: int, now_ms: int | None = None
    ) -> None:
        """Event-time lag: how old the event (UTC epoch ms) is when processed, in seconds."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        self.event_lag.labels(component, topic).observe(max(0.0, (now - event_ms) / 1000))


def process_metrics(registry: CollectorRegistry | None = None) -> ProcessMetrics:
    """Create the standard metrics on ``registry`` (a fresh one by default, so tests never collide)."""
    reg = registry if registry is not None else CollectorRegistry()
    return ProcessMetrics(
        registry=reg,
        events_in=Counter("edream_events_in", "Events consumed", ["component", "topic"], registry=reg),
        events_out=Counter("edream_events_out", "Events produced", ["component", "topic"], registry=reg),
        errors=Counter(
            "edream_errors", "Errors by stage and type", ["component", "stage", "error"], registry=reg
        ),
        processing=Histogram(
            "edream_processing_seconds",
            "Processing time per stage",
            ["component", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        event_lag=Histogram(
            "edream_event_lag_seconds",
            "Age of events when processed (event time)",
            ["component", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        ),
        consumer_lag=Gauge(
            "edream_consumer_lag_messages", "Consumer-group lag", ["component", "topic"], registry=reg
        ),
        buffer_size=Gauge(
            "edream_buffer_size", "Messages buffered in memory", ["component", "buffer"], registry=reg
        ),
        chain_confirmations=Gauge(
            "edream_chain_confirmations",
            "Confirmations of the last anchor transaction",
            ["kind"],
            registry=reg,
        ),
    )


def serve_metrics(metrics: ProcessMetrics, port: int, host: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` for a process without a web server of its own (connectors, CLI daemons)."""
    start_http_server(port, host, registry=metrics.registry)
