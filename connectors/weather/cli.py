"""``edream weather``: the weather feed (a weather service -> ``weather.hourly.v1``) and a simulated service."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from connectors.weather.config import WeatherConfigError, load_weather_config

log = logging.getLogger(__name__)
DEMO_CONFIG = Path(__file__).with_name("demo-weather.yaml")
SIM_PORT = 8097
FEED = "weather-feed"  # its entry under connectors in topology.yaml

app = typer.Typer(
    help="Weather per site (air temperature, GHI, clear-sky GHI; observed and forecast) from an Open-Meteo-"
    "compatible API to weather.hourly.v1, which the forecasts stage reads with FORECAST_WEATHER_LOCATION.",
    no_args_is_help=True,
)

Config = Annotated[
    Path,
    typer.Option(
        "--config", "-c", exists=True, dir_okay=False, help="weather.yaml (service, poll period, sites)"
    ),
]


@app.command()
def check(config: Config = DEMO_CONFIG) -> None:
    """Validate a weather.yaml; on error print it (file, entry, field) and exit 1. Last line: JSON summary."""
    try:
        cfg = load_weather_config(config)
    except WeatherConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        json.dumps({"ok": True, "base_url": cfg.base_url, "sites": [s.location_id for s in cfg.sites]})
    )


@app.command()
def feed(
    config: Config = DEMO_CONFIG,
    metrics_port: Annotated[int | None, typer.Option(help="serve Prometheus /metrics on this port")] = None,
    once: Annotated[
        bool, typer.Option(help="poll every site once, then exit (1 if any poll failed)")
    ] = False,
) -> None:
    """Poll the service for every site every poll_minutes and send the hours that changed (KAFKA_BOOTSTRAP_SERVERS;
    the topic is the weather-feed connector's output in topology.yaml). Failed polls are retried with backoff."""
    from confluent_kafka import Producer
    from prometheus_client import start_http_server

    from connectors.weather.feed import FeedMetrics, WeatherFeed
    from edream.kafka import producer_config
    from edream.logs import configure_logging
    from edream.serde import Serde
    from edream.settings import load_settings
    from edream.topology import load_topology

    try:
        cfg = load_weather_config(config)
    except WeatherConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = load_settings()
    configure_logging(settings.edream_log_level)
    topic = next(c.output for c in load_topology(settings.edream_topology).connectors if c.name == FEED)
    serde = Serde(settings)
    metrics = FeedMetrics()
    if metrics_port is not None:
        start_http_server(metrics_port, "127.0.0.1", registry=metrics.registry)
    producer = Producer(producer_config(settings))
    wf = WeatherFeed(cfg, producer, topic, lambda r: serde.encode("WeatherHour", r, topic), metrics=metrics)
    if once:
        wf.run_once()
        failed = [s.location_id for s in cfg.sites if wf.schedule[s.location_id].delays.failures]
        raise typer.Exit(1 if failed else 0)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "weather feed: %d sites from %s every %g min -> %s",
        len(cfg.sites),
        cfg.base_url,
        cfg.poll_minutes,
        topic,
    )
    wf.run(stop)


@app.command()
def sim(
    port: Annotated[int, typer.Option(help="port of the simulated service (base URL .../v1)")] = SIM_PORT,
) -> None:
    """Serve an Open-Meteo-compatible forecast API driven by measured weather (NSRDB PSM3 of NREL SERF East, its
    days in a loop; clearness measured, sun at the asked place and date): tools/sim/weather_service.py."""
    from tools.sim.weather_service import serve

    serve(port)
