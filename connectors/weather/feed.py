"""The weather feed's loop: every ``poll_minutes`` ask the service about each site and send what changed.

One poll of a site: ``GET <base_url>/forecast`` (:mod:`.openmeteo`), its hours as WeatherHour records, and of those
only the hours whose kind or values differ from what this process last sent for that key
(``<location_id>/<hour_start>``) go to ``weather.hourly.v1``; the producer is flushed and every delivery checked
before the hours count as sent, so a broker outage loses nothing (they are sent again at the next attempt). A failed
poll (service down, HTTP error, unreadable answer, broker) is logged, counted and retried with the platform's
backoff (:class:`edream.retry.Delays`) until it succeeds; the other sites go on. A restarted feed sends every hour
once more: the topic is compacted on the same keys and the forecasts stage keeps the latest value per key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.weather.config import Site, WeatherFeedConfig
from connectors.weather.openmeteo import request_params, weather_hours
from edream.retry import Delays

log = logging.getLogger(__name__)


class Producer(Protocol):
    """The part of confluent_kafka.Producer the feed uses."""

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callable[..., None]) -> None: ...

    def flush(self, timeout: float) -> int: ...


class DeliveryError(RuntimeError):
    """The broker did not take every record of a poll (they are sent again at the next attempt)."""


class FeedMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = r = registry or CollectorRegistry()
        self.polls = Counter(
            "weather_polls_total", "Polls of the weather service", ["site", "outcome"], registry=r
        )
        self.sent = Counter("weather_hours_sent_total", "WeatherHour records sent", ["site"], registry=r)
        self.rejected = Counter(
            "weather_values_rejected_total",
            "Values of answers left out (not a number in bounds)",
            ["site"],
            registry=r,
        )
        self.up = Gauge("weather_site_up", "1 if the last poll of the site succeeded", ["site"], registry=r)
        self.last_ok = Gauge(
            "weather_last_success_timestamp_seconds",
            "When the site was last polled successfully",
            ["site"],
            registry=r,
        )


@dataclass
class _Schedule:
    due: float = 0.0
    delays: Delays | None = None


class WeatherFeed:
    """``encode(record) -> bytes``: the WeatherHour Avro encoding of the topic; ``clock``: wall clock, s."""

    def __init__(
        self,
        cfg: WeatherFeedConfig,
        producer: Producer,
        topic: str,
        encode: Callable[[dict[str, Any]], bytes],
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        metrics: FeedMetrics | None = None,
    ):
        self.cfg, self.producer, self.topic, self.encode, self.clock = cfg, producer, topic, encode, clock
        self.http = http or httpx.Client(timeout=cfg.timeout_s)
        self.metrics = metrics or FeedMetrics()
        self.last_sent: dict[bytes, tuple] = {}
        self.schedule = {
            s.location_id: _Schedule(delays=Delays(initial_s=2.0, max_s=300.0)) for s in cfg.sites
        }

    def poll(self, site: Site) -> int:
        """Ask the service about ``site`` and send the hours that changed; the number sent. Raises on any failure
        (nothing of the poll counts as sent then)."""
        issued_at = int(self.clock() * 1000)
        resp = self.http.get(f"{self.cfg.base_url}/forecast", params=request_params(site, self.cfg))
        resp.raise_for_status()
        parsed = weather_hours(resp.json(), site, issued_at, self.cfg.base_url)
        for p in parsed.problems:
            log.warning("weather %s: %s", site.location_id, p)
        self.metrics.rejected.labels(site.location_id).inc(len(parsed.problems))
        fresh = []
        for rec in parsed.records:
            key = f"{rec['location_id']}/{rec['hour_start']}".encode()
            values = (rec["kind"], rec["temp_c"], rec["ghi_w_m2"], rec["ghi_clear_w_m2"])
            if self.last_sent.get(key) != values:
                fresh.append((key, values, rec))
        failed: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failed.append(str(err))

        for key, _, rec in fresh:
            self.producer.produce(self.topic, value=self.encode(rec), key=key, on_delivery=delivered)
        left = self.producer.flush(30.0)
        if left or failed:
            raise DeliveryError(f"{left} records not delivered in 30 s, {len(failed)} failed: {failed[:1]}")
        for key, values, _ in fresh:
            self.last_sent[key] = values
        return len(fresh)

    def run_once(self) -> None:
        """Poll every site that is due (a failed one again after its backoff delay)."""
        for site in self.cfg.sites:
            sched = self.schedule[site.location_id]
            if self.clock() < sched.due:
                continue
            try:
                n = self.poll(site)
            except (httpx.HTTPError, ValueError, DeliveryError, KafkaException, BufferError) as exc:
                wait = sched.delays.next()
                sched.due = self.clock() + wait
                self.metrics.polls.labels(site.location_id, "error").inc()
                self.metrics.up.labels(site.location_id).set(0)
                log.warning(
                    "weather %s: poll failed (attempt %d): %s: %s; retrying in %.0f s",
                    site.location_id, sched.delays.failures, type(exc).__name__, exc, wait,
                )  # fmt: skip
                continue
            sched.delays.reset()
            sched.due = self.clock() + self.cfg.poll_minutes * 60
            self.metrics.polls.labels(site.location_id, "ok").inc()
            self.metrics.sent.labels(site.location_id).inc(n)
            self.metrics.up.labels(site.location_id).set(1)
            self.metrics.last_ok.labels(site.location_id).set(self.clock())
            log.info("weather %s: %d hours sent", site.location_id, n)

    def run(self, stop: threading.Event, tick_s: float = 1.0) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            self.run_once()
            stop.wait(tick_s)
