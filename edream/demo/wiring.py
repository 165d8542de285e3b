"""Faust wiring of the demo inside ``edream run`` (thin: the logic is in community, responder and script).

* ``demo_feed`` timer (every meter step): on the first run uploads ``history_minutes`` of readings (on a fresh data
  dir after a day of 15-min intervals before them, :mod:`~edream.demo.meter_history`), then the readings of every
  grid time since the last run; devices follow flexibility orders via the responder.
* ``demo_script`` timer (1 s): publishes every scripted event that is due.
* ``demo_devices`` agent: feeds ``flex.orders.v1`` to the responder.

``market_for_demo`` writes ``<config dir>/market.yaml`` (the demo's gate-closure lead) unless the file exists;
``edream run`` calls it before it starts the stage processes, which read the file once at start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from edream.demo.community import Community
from edream.demo.meter_history import interval_history
from edream.demo.responder import FlexResponder
from edream.demo.script import DemoConfig, DemoScript, TimedEvent, demo_market_config
from edream.serde import DecodeError
from edream.topology import topic_names
from streams.app import AgentContext, raw_topic
from streams.flex.orders import FlexOrder
from streams.market.config import MarketConfig

log = logging.getLogger("edream.demo")
HISTORY_MINUTES = 60
HISTORY_STEP_MS = 30_000
#: before the hour of raw readings, a day of 15-min intervals (meter_history): the forecasts have then seen
#: yesterday's evening peak, so the day-ahead forecast and the grid's congestion forecast show tonight's
INTERVAL_HISTORY_HOURS = 24
HISTORY_MARKER = "demo-history.sent"
QUARTER_HOUR_MS = 900_000
#: records sent between two yields to the event loop while the history goes out (about 11,000 records: without a
#: yield the platform's web API, sink and consumer heartbeats waited seconds for it on a loaded machine)
YIELD_EVERY = 200


def now_ms() -> int:
    return int(time.time() * 1000)


def market_for_demo(data_dir: Path, start_ms: int, cfg: DemoConfig) -> MarketConfig:
    """The market configuration the platform will load; written for the demo when none exists."""
    path = Path(data_dir) / "market.yaml"
    if path.exists():
        return MarketConfig.from_yaml(path)
    market = demo_market_config(start_ms, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# written by the edream demo (edream run): gate closure lead chosen so the first gate closes\n"
        "# ~4 minutes after the first start; delete this file to get the market defaults\n"
        + yaml.safe_dump(market.model_dump(mode="json"), sort_keys=True)
    )
    return market


def register_demo(app: Any, ctx: AgentContext, cfg: DemoConfig | None = None) -> None:
    cfg = cfg or DemoConfig()
    names = topic_names(ctx.topology)
    start = now_ms()
    # the day of interval history goes out once per data dir (after a restart the live intervals of that day
    # exist, with ids the history would reuse); the marker is written once it is sent
    history_sent = Path(ctx.settings.config_dir) / HISTORY_MARKER
    market = market_for_demo(ctx.settings.config_dir, start, cfg)
    community = Community(cfg.prosumers, cfg.seed)
    responder = FlexResponder(community.step_ms)
    events = DemoScript(community, cfg, market, start).events()
    topics = {canonical: raw_topic(app, name) for canonical, name in names.items()}
    state: dict[str, Any] = {"last_ts": None, "next": next(events, None), "sent": 0}

    async def send(canonical: str, key: str, schema: str, record: dict[str, Any]) -> None:
        value = ctx.serde.encode(schema, record, names[canonical])
        await topics[canonical].send(key=key.encode(), value=value)
        ctx.count(f"demo.{schema}")

    async def send_all(
        canonical: str, key_field: str, schema: str, records: Iterable[dict[str, Any]]
    ) -> None:
        for i, rec in enumerate(records, 1):
            await send(canonical, rec[key_field], schema, rec)
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    @app.timer(community.step_ms / 1000)
    async def demo_feed() -> None:
        now = now_ms()
        if state["last_ts"] is None:
            # on a quarter hour: the day of intervals ends there and the readings fill the next window whole (it
            # was covered 7 of 15 minutes)
            since = (start - HISTORY_MINUTES * 60_000) // QUARTER_HOUR_MS * QUARTER_HOUR_MS
            hours = 0 if history_sent.exists() else INTERVAL_HISTORY_HOURS
            history = interval_history(community, since, hours, computed_at_ms=now)
            await send_all("meter.intervals.15m.v1", "prosumer_id", "IntervalEnergy", history)
            readings = community.readings(since, start, ingest_ms=now, step_ms=HISTORY_STEP_MS)
            await send_all("meter.readings.raw.v1", "device_id", "Measurement", readings)
            state["last_ts"] = start
            if hours:
                history_sent.write_text(f"{hours} h of demo interval history before {since} (UTC epoch ms)\n")
            log.info(
                "demo: uploaded %d h of 15-min intervals and %d min of readings for %d prosumers",
                hours,
                HISTORY_MINUTES,
                len(community),
            )
        for m in community.readings(state["last_ts"], now, responder.metered_kw, ingest_ms=now):
            await send("meter.readings.raw.v1", m["device_id"], "Measurement", m)
            state["last_ts"] = m["ts"]

    @app.timer(1.0)
    async def demo_script() -> None:
        now = now_ms()
        while state["next"] is not None and state["next"].at_ms <= now:
            ev: TimedEvent = state["next"]
            await send(ev.topic, ev.key, ev.schema, ev.record)
            state["sent"] += 1
            state["next"] = next(events, None)

    orders_topic = names["flex.orders.v1"]

    @app.agent(topics["flex.orders.v1"], name="demo_devices")
    async def demo_devices(stream: Any) -> None:
        async for value in stream:
            try:
                schema, rec = ctx.serde.decode(value, orders_topic)
            except DecodeError:
                continue
            if schema == "FlexOrder" and responder.on_order(FlexOrder.from_avro(rec)):
                log.info("demo: devices follow %s revision %s", rec["order_id"], rec["revision"])
