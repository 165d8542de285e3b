"""The simulated site's VEN logic (tools/sim/openadr_site.py): the dispatch intervals it reads from an event as
openleadr parses it, and the power it reports while following them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tools.sim.openadr_site import (
    EventInterval,
    OpenAdrSite,
    SiteLoad,
    describe_event,
    dispatch_intervals,
    site_power_w,
)

START = datetime(2027, 1, 15, 18, 0, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
Q = 900_000  # 15 min in ms


def _event(event_id: str = "o-1~r1~p-1", status: str = "far", payloads=(-3.0, 0.0, -2.5)) -> dict:
    """An event shaped like openleadr's parse of the platform's VTN event, plus a SIMPLE signal the site does not
    follow; intervals in OpenADR order (each starts where the one before ends)."""
    intervals = [
        {"duration": timedelta(minutes=15), "signal_payload": kw, "uid": n} for n, kw in enumerate(payloads)
    ]
    simple = [{"duration": timedelta(hours=1), "signal_payload": 1}]
    return {
        "event_descriptor": {"event_id": event_id, "event_status": status, "modification_number": 0},
        "active_period": {"dtstart": START, "duration": timedelta(minutes=15 * len(payloads))},
        "event_signals": [
            {"signal_name": "SIMPLE", "signal_type": "level", "intervals": simple},
            {"signal_name": "LOAD_DISPATCH", "signal_type": "delta", "intervals": intervals},
        ],
    }


def test_dispatch_intervals_follow_each_other_from_the_active_period_start():
    assert dispatch_intervals(_event()) == [
        EventInterval(T0, T0 + Q, -3.0),
        EventInterval(T0 + Q, T0 + 2 * Q, 0.0),
        EventInterval(T0 + 2 * Q, T0 + 3 * Q, -2.5),
    ]
    line = describe_event(_event())
    assert line.startswith("event o-1~r1~p-1 (far) from 2027-01-15T18:00:00+00:00")
    assert "LOAD_DISPATCH/delta -3,0,-2.5" in line and "SIMPLE/level 1" in line


def test_power_is_the_load_plus_the_dispatched_delta_never_below_zero():
    flat = SiteLoad(base_kw=4.0, evening_kw=0.0)
    intervals = dispatch_intervals(_event())
    assert site_power_w(flat, intervals, T0 - 1) == 4000.0
    assert site_power_w(flat, intervals, T0) == 1000.0
    assert site_power_w(flat, intervals, T0 + Q) == 4000.0
    assert site_power_w(flat, intervals, T0 + 2 * Q + 5) == 1500.0
    assert site_power_w(flat, intervals, T0 + 3 * Q) == 4000.0
    assert site_power_w(SiteLoad(base_kw=2.0, evening_kw=0.0), intervals, T0) == 0.0  # 2 kW - 3 kW: no export
    evening = SiteLoad(base_kw=1.0, evening_kw=2.0)
    assert evening.kw(T0 + 4 * Q) == 3.0 and 1.0 < evening.kw(T0) < 3.0 and evening.kw(T0 - 12 * 4 * Q) < 1.01


def test_the_site_opts_in_follows_events_and_drops_cancelled_ones():
    site = OpenAdrSite(
        "http://127.0.0.1:1/OpenADR2/Simple/2.0b", "site-1", load=SiteLoad(2.0, 0.0), now=lambda: T0 + 10
    )
    assert asyncio.run(site._on_event(_event(payloads=(-0.5,)))) == "optIn"
    assert site.power_w() == 1500.0
    assert asyncio.run(site._on_event(_event(status="cancelled", payloads=(-0.5,)))) == "optIn"
    assert site.power_w() == 2000.0 and site.events == {}
    site.now = lambda: T0 + 3 * Q
    asyncio.run(site._on_event(_event()))  # over when it arrives: not kept
    assert site.events == {}
