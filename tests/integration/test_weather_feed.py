"""The weather path on real parts: the simulated Open-Meteo service over HTTP -> the weather feed -> the real broker
-> the forecasts stage's registry view -> its linear models.

* The feed sends every hour once, nothing again while nothing changed, survives the service going away (poll
  failed, site down, backoff) and picks up when it is back.
* The forecasts stage on the broker with FORECAST_WEATHER_LOCATION reads those hours through a GlobalView and gives
  exactly the records of its processor run in memory over the same weather, and other records than without it.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry
from test_forecasts_stage import PROSUMERS, STEP, Stage, _stop, interval

from connectors.weather.config import Site, WeatherFeedConfig
from connectors.weather.feed import FeedMetrics, WeatherFeed
from edream.serde import Serde
from edream.topology import load_topology
from streams.agents.forecasts import stage
from streams.analytics.weather_view import WeatherView
from tools.sim.flex_scenario import StaticView
from tools.sim.weather_service import WeatherService

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERDE = Serde()
H = 3_600_000
DAY = 86_400_000
SITE = Site(location_id="golden", latitude=39.742, longitude=-105.18)


def _feed(base_url: str, bootstrap: str, topic: str) -> WeatherFeed:
    # 30 s: the simulated service computes 6 days of clear sky in this process, beside 5 other workers (ci57: 5 s ran out);
    # two forecast days, as the feed's default: with one, the last UTC hour of a day has no forecast hour ahead (ci78)
    cfg = WeatherFeedConfig(base_url=base_url, past_days=4, forecast_days=2, sites=[SITE], timeout_s=30)
    return WeatherFeed(
        cfg,
        Producer({"bootstrap.servers": bootstrap}),
        topic,
        lambda r: SERDE.encode("WeatherHour", r, topic),
        metrics=FeedMetrics(CollectorRegistry()),
    )


def _metric(feed: WeatherFeed, name: str, **labels: str) -> float:
    return feed.metrics.registry.get_sample_value(name, labels) or 0.0


def test_the_feed_sends_each_hour_once_and_rides_out_an_outage_of_the_service(
    kafka_bootstrap, unique_topic, read_topic
):
    topic = unique_topic("weather", 1, {"cleanup.policy": "compact"})
    svc = WeatherService().start()
    feed = _feed(svc.base_url, kafka_bootstrap, topic)
    feed.run_once()
    sent = _metric(feed, "weather_hours_sent_total", site="golden")
    assert sent == 6 * 24 + 1  # 4 past days, today and tomorrow, plus the hour before the first stamp
    msgs = read_topic(topic, int(sent))
    recs = {m.key(): SERDE.decode(m.value(), topic)[1] for m in msgs}
    assert len(recs) == sent and all(k == f"golden/{r['hour_start']}".encode() for k, r in recs.items())
    now = time.time() * 1000
    assert {r["kind"] for r in recs.values() if r["hour_start"] + H <= now - 60_000} == {"OBSERVED"}
    assert {r["kind"] for r in recs.values() if r["hour_start"] > now} == {"FORECAST"}

    feed.schedule["golden"].due = 0.0
    feed.run_once()  # the same answer: nothing new (an hour may have just passed: its kind changed)
    assert _metric(feed, "weather_hours_sent_total", site="golden") - sent <= 1

    port = svc.port
    svc.stop()
    feed.schedule["golden"].due = 0.0
    feed.run_once()
    assert _metric(feed, "weather_polls_total", site="golden", outcome="error") == 1
    assert _metric(feed, "weather_site_up", site="golden") == 0
    assert feed.schedule["golden"].due > time.time()  # backing off

    svc = WeatherService(port).start()
    try:
        feed.schedule["golden"].due = 0.0
        feed.run_once()
        assert _metric(feed, "weather_site_up", site="golden") == 1
        assert feed.schedule["golden"].delays.failures == 0
    finally:
        svc.stop()


def _pv_intervals(weather: WeatherView, first_day: int, days: int) -> list[tuple[bytes, bytes]]:
    """Each prosumer's intervals: a constant load and a PV system of 2-5 kWp following the site's irradiance."""
    out = []
    for i in range(days * 96):
        start = first_day * DAY + i * STEP
        ghi = weather.value("ghi_w_m2", start, STEP)
        for n, p in enumerate(PROSUMERS):
            export = 0.0 if math.isnan(ghi) else ghi / 1000 * (2 + n % 4) * 250 * 0.85
            out.append((p.encode(), interval(p, start, 120.0 + 10 * n, export)))
    return out


def test_the_forecasts_stage_reads_the_sites_weather_from_the_broker(
    test_settings, renamed_topology, kafka_bootstrap, read_topic
):
    settings = test_settings.model_copy(update={"forecast_weather_location": "golden"})
    st = Stage(renamed_topology, settings, kafka_bootstrap)
    wtopic = st.rename["weather.hourly.v1"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(wtopic, 1, 1, config={"cleanup.policy": "compact"})]).values():
        fut.result(15)
    svc = WeatherService().start()
    try:
        feed = _feed(svc.base_url, kafka_bootstrap, wtopic)
        feed.run_once()
    finally:
        svc.stop()
    n = int(_metric(feed, "weather_hours_sent_total", site="golden"))
    view = StaticView({})
    for m in read_topic(wtopic, n):
        view.put(m.key(), m.value())
    weather = WeatherView(view, "golden", SERDE, wtopic)
    weather.refresh()
    items = _pv_intervals(weather, int(time.time() * 1000) // DAY - 4, 3)

    want = st.expected(items, {wtopic: view})
    without = stage(test_settings, load_topology(st.topology_path))
    assert want != st.expected(items, {}, without) and len(want) > 1000  # the weather changes the forecasts
    st.produce(items)
    sup, t = st.start(settings)
    try:
        assert st.outputs(want) == want
    finally:
        _stop(sup, t)


def test_the_feed_command_sends_the_sites_weather_and_fails_when_the_service_is_down(
    kafka_bootstrap, renamed_topology, read_topic, tmp_path
):
    """``edream weather feed --once`` as its own process (it configures the process's logging)."""
    path, rename = renamed_topology()
    topic = rename["weather.hourly.v1"]
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})]).values():
        fut.result(15)
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "EDREAM_TOPOLOGY": str(path)}
    svc = WeatherService().start()
    cfg = tmp_path / "weather.yaml"
    cfg.write_text(
        f"weather:\n  base_url: {svc.base_url}\n  past_days: 1\n  forecast_days: 1\n"
        "  sites: [{location_id: golden, latitude: 39.742, longitude: -105.18}]\n"
    )
    feed = [sys.executable, "-m", "edream.cli", "weather", "feed", "-c", str(cfg), "--once"]
    try:
        done = subprocess.run(feed, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
    finally:
        svc.stop()
    recs = [SERDE.decode(m.value(), topic)[1] for m in read_topic(topic, 49)]
    assert len(recs) == 49 and {r["location_id"] for r in recs} == {"golden"}
    done = subprocess.run(feed, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "poll failed" in done.stderr  # the service is gone
