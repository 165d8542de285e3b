"""Prometheus metrics of one connector process (own registry, so several runtimes can coexist in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ConnectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.readings = Counter(
            "connector_readings_total",
            "Readings produced, by protocol and quality",
            ["protocol", "quality"],
            registry=r,
        )
        self.dropped = Counter(
            "connector_readings_dropped_total",
            "Readings dropped because the buffer bound was reached",
            registry=r,
        )
        self.buffered = Gauge(
            "connector_buffered_readings",
            "Readings accepted but not yet acknowledged by the broker",
            registry=r,
        )
        self.device_up = Gauge(
            "connector_device_up", "1 if the last poll/connection succeeded", ["device"], registry=r
        )
        self.device_errors = Counter(
            "connector_device_errors_total", "Failed polls/connections per device", ["device"], registry=r
        )
        self.poll_seconds = Histogram(
            "connector_poll_seconds",
            "Duration of one device poll",
            ["protocol"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
        )
        self.commands = Counter(
            "connector_commands_total",
            "Device commands settled, by action and result status (EXECUTED, FAILED, EXPIRED, ...)",
            ["action", "status"],
            registry=r,
        )
        self.commands_skipped = Counter(
            "connector_commands_skipped_total",
            "Command messages not executed: other_device, other_shard, duplicate, undecodable (dead-lettered)",
            ["reason"],
            registry=r,
        )
        self.commands_in_progress = Gauge(
            "connector_commands_in_progress",
            "Commands waiting for valid_from, for their device or retrying",
            registry=r,
        )
