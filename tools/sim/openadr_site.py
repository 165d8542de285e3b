"""A simulated prosumer site speaking OpenADR 2.0b: a VEN on ``openleadr``'s ``OpenADRClient`` (the library's own
implementation of the protocol, independent of the platform's VTN in ``connectors/openadr``).

It registers with a VTN by its ``ven_name`` (retrying while the VTN is not up yet), opts in to every DR event it
gets (logging its id, signals and intervals in kW), follows the ``LOAD_DISPATCH`` delta it opted in to, and offers
one TELEMETRY_USAGE real-power report (resource ``resource_id``, W) that the VTN samples when it asks. The power is
a deterministic function of UTC time: a household-like load (base plus an evening peak) plus the delta of the
opted-in event interval at that instant, never below 0 kW (the site has no export).

``edream openadr sim-site --vtn-url URL --ven-name NAME`` runs it (connectors/openadr/cli.py).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from openleadr import OpenADRClient
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: the signal the platform's VTN sends an ordered prosumer: type delta, kW per interval (negative = consume less)
DISPATCH_SIGNAL = "LOAD_DISPATCH"


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class EventInterval:
    """One interval of an opted-in event's LOAD_DISPATCH delta signal: [start_ms, end_ms) UTC epoch ms, kW."""

    start_ms: int
    end_ms: int
    kw: float


def dispatch_intervals(event: Mapping[str, Any]) -> list[EventInterval]:
    """The LOAD_DISPATCH intervals of an event as openleadr parses it. Intervals follow each other from the
    active period's start (OpenADR: an interval's start is the sum of the durations before it)."""
    start = int(event["active_period"]["dtstart"].timestamp() * 1000)
    out = []
    for signal in event.get("event_signals") or []:
        if signal.get("signal_name") != DISPATCH_SIGNAL:
            continue
        t = start
        for interval in signal.get("intervals") or []:
            end = t + int(interval["duration"].total_seconds() * 1000)
            out.append(EventInterval(t, end, float(interval["signal_payload"])))
            t = end
    return out


def describe_event(event: Mapping[str, Any]) -> str:
    """One log line: event id, status, and per signal its name/type and interval payloads."""
    desc = event["event_descriptor"]
    signals = [
        f"{s.get('signal_name')}/{s.get('signal_type')} "
        + ",".join(f"{i['signal_payload']:g}" for i in s.get("intervals") or [])
        for s in event.get("event_signals") or []
    ]
    start = event["active_period"]["dtstart"].isoformat()
    return f"event {desc['event_id']} ({desc.get('event_status')}) from {start}: {'; '.join(signals)} kW"


@dataclass(frozen=True)
class SiteLoad:
    """The site's own consumption without DR, kW: ``base_kw`` plus an evening peak of ``evening_kw`` at 19:00 UTC
    (Gaussian, 2 h wide). ``evening_kw=0`` gives a constant load."""

    base_kw: float = 1.2
    evening_kw: float = 1.8

    def kw(self, t_ms: int) -> float:
        hour = (t_ms % DAY_MS) / HOUR_MS
        return self.base_kw + self.evening_kw * math.exp(-(((hour - 19.0) / 2.0) ** 2))


def site_power_w(load: SiteLoad, intervals: list[EventInterval], t_ms: int) -> float:
    """Net real power at ``t_ms`` in W (import positive): the load plus the delta of the interval covering
    ``t_ms`` (at most one applies: the newest event's), floored at 0 W."""
    delta = next((i.kw for i in reversed(intervals) if i.start_ms <= t_ms < i.end_ms), 0.0)
    return max(0.0, load.kw(t_ms) + delta) * 1000.0


class NotRegistered(RuntimeError):
    """The VTN did not register the VEN (not reachable, or it refused the name)."""


@dataclass
class OpenAdrSite:
    """A VEN for one site. ``vtn_url``: the VTN's endpoint (``http://host:port/OpenADR2/Simple/2.0b``);
    ``resource_id``: the report's resource (the VTN maps it to the reading's device id; keep it distinct from the
    site's other meters); ``sampling_seconds``: the telemetry sampling rate offered; ``now``: UTC epoch ms."""

    vtn_url: str
    ven_name: str
    resource_id: str = "site-ems"
    load: SiteLoad = field(default_factory=SiteLoad)
    sampling_seconds: float = 10.0
    now: Callable[[], int] = wall_ms
    events: dict[str, list[EventInterval]] = field(default_factory=dict)  # opted-in DR event id -> intervals
    client: OpenADRClient | None = None

    def power_w(self) -> float:
        """The report callback: the site's power now, W."""
        intervals = [i for ev in self.events.values() for i in ev]
        return site_power_w(self.load, intervals, self.now())

    async def _on_event(self, event: dict[str, Any]) -> str:
        event_id = event["event_descriptor"]["event_id"]
        log.info("openadr site %s: %s -> optIn", self.ven_name, describe_event(event))
        if event["event_descriptor"].get("event_status") == "cancelled":
            self.events.pop(event_id, None)
        else:
            self.events[event_id] = dispatch_intervals(event)
        now = self.now()  # forget what is over (a demo runs for days)
        self.events = {k: v for k, v in self.events.items() if v and v[-1].end_ms > now}
        return "optIn"

    def _new_client(self) -> OpenADRClient:
        client = OpenADRClient(ven_name=self.ven_name, vtn_url=self.vtn_url, show_fingerprint=False)
        client.add_handler("on_event", self._on_event)
        client.add_handler("on_update_event", self._on_event)
        rate = timedelta(seconds=self.sampling_seconds)
        client.add_report(
            callback=self.power_w,
            resource_id=self.resource_id,
            measurement="REAL_POWER",
            unit="W",
            sampling_rate=rate,
            report_duration=rate,
        )
        return client

    async def _register_once(self) -> None:
        client = self._new_client()
        await (
            client.run()
        )  # on failure openleadr logs why, closes its session and leaves registration_id None
        if client.registration_id is None:
            raise NotRegistered(f"{self.vtn_url} did not register VEN {self.ven_name!r}")
        self.client = client

    async def start(self, register_timeout_s: float = 60.0) -> None:
        """Register (trying every second until ``register_timeout_s``), then poll and report in the background;
        raises :class:`NotRegistered` when the VTN never registered us."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(NotRegistered),
            stop=stop_after_delay(register_timeout_s),
            wait=wait_fixed(1.0),
            reraise=True,
        ):
            with attempt:
                await self._register_once()
        log.info("openadr site %s: registered as %s at %s", self.ven_name, self.ven_id, self.vtn_url)

    @property
    def ven_id(self) -> str | None:
        return self.client.ven_id if self.client else None

    def describe(self) -> dict[str, Any]:
        return {
            "ven_name": self.ven_name,
            "ven_id": self.ven_id,
            "vtn_url": self.vtn_url,
            "resource_id": self.resource_id,
            "sampling_seconds": self.sampling_seconds,
        }

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()
            self.client = None
