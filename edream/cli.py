"""The ``edream`` command line."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from edream.settings import ConfigFileError, load_settings
from edream.topology import TopologyError, load_topology

app = typer.Typer(
    help="edream: event-streaming platform for demand response, flexibility, VPPs and P2P energy markets.\n\n"
    "Components come from env vars (KAFKA_BOOTSTRAP_SERVERS, SCHEMA_REGISTRY_URL, CLICKHOUSE_DSN, ETH_RPC_URL); "
    "unset ones start embedded (Tansu broker, chDB, anvil).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
topology_app = typer.Typer(
    help="Validate and show topology.yaml, the map of topics, agents, connectors, sinks."
)
topics_app = typer.Typer(help="Manage Kafka topics declared in topology.yaml.")
app.add_typer(topology_app, name="topology")
app.add_typer(topics_app, name="topics")

# Sub-command groups contributed by the platform's areas: (name, "module:attribute").
SUBAPPS: list[tuple[str, str]] = [
    ("forecast", "streams.analytics.cli:forecast_app"),
    ("baseline", "streams.analytics.cli:baseline_app"),
    ("flex", "streams.flex.cli:app"),
    ("market", "streams.market.cli:app"),
    ("verify", "streams.anchoring.cli:app"),
    ("vpp", "streams.vpp.cli:app"),
    ("replay", "edream.ops_cli:app"),
    ("connectors", "connectors.cli:app"),
]


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code)


def _settings():
    try:
        return load_settings()
    except ConfigFileError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    demo: Annotated[
        bool, typer.Option(help="the scripted demo day: simulated community, DSO request, market")
    ] = True,
    field_sim: Annotated[
        bool, typer.Option(help="with --demo: MQTT/Modbus/OPC UA/HTTP simulators + a connector process")
    ] = True,
):
    """Start the platform: embedded stack for anything unconfigured, topics, all agents, web status. Ctrl-C stops."""
    from edream.kafka_security import KafkaSecurityError
    from edream.logs import configure_logging
    from edream.runner import AlreadyRunning, run_platform
    from edream.web_auth import WebAuthError

    settings = _settings()
    configure_logging(settings.edream_log_level)
    try:
        run_platform(settings, demo=demo, field_sim=field_sim)
    except (TopologyError, AlreadyRunning, WebAuthError, KafkaSecurityError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False):
    """What is running where (broker, ClickHouse, chain) and whether each is reachable."""
    from edream.stack import platform_status

    st = platform_status(_settings())
    if as_json:
        typer.echo(json.dumps(st, indent=2))
        return
    p = st["platform"]
    running = f"running (pid {p['pid']}, {p['web']})" if p["running"] else "not running"
    typer.echo(f"platform    {running}")
    for c in st["components"]:
        mark = "ok " if c["reachable"] else "DOWN"
        typer.echo(f"{c['name']:<11} {mark} {c['where']}  {c['detail']}")
    live = p.get("live") or {}
    for table, n in (live.get("clickhouse", {}).get("tables") or {}).items():
        typer.echo(f"  table {table}: {n} rows")
    anchor = (live.get("clickhouse") or {}).get("last_anchor")
    if anchor:
        typer.echo(
            f"last anchor {anchor['kind']} {anchor['window_id']}: {anchor['record_count']} records, "
            f"block {anchor['block_number']}, tx {anchor['tx_hash']}"
        )
    lag = st.get("lag") or {}
    if "total" in lag:
        busy = ", ".join(f"{t} {n}" for t, n in sorted(lag.get("by_topic", {}).items()) if n)
        typer.echo(f"lag         {lag['total']} messages" + (f" ({busy})" if busy else ""))


@topology_app.command("check")
def topology_check(
    path: Annotated[Path | None, typer.Argument(help="topology file (default: topology.yaml)")] = None,
):
    """Validate a topology file; exit 0, or print one line naming file, line, entry and field and exit 1."""
    p = path or _settings().edream_topology
    try:
        topo = load_topology(p)
    except TopologyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{p}: ok ({len(topo.topics)} topics, {len(topo.agents)} agents, "
        f"{len(topo.connectors)} connectors, {len(topo.sinks)} sinks)"
    )


@topology_app.command("table")
def topology_table(path: Annotated[Path | None, typer.Argument()] = None):
    """Print the topic table (Markdown) that the README carries."""
    from edream.docs import topic_table

    typer.echo(topic_table(load_topology(path or _settings().edream_topology)))


@topics_app.command("apply")
def topics_apply():
    """Create missing topics on the configured broker (idempotent) and print what changed or differs."""
    from edream.kafka import apply_topics
    from edream.stack import NoBroker, resolve_bootstrap

    settings = _settings()
    try:
        topo = load_topology(settings.edream_topology)
        bootstrap = resolve_bootstrap(settings)
    except (TopologyError, NoBroker) as exc:
        raise _fail(str(exc)) from None
    diff = apply_topics(bootstrap, topo.topics)
    for line in diff.lines():
        typer.echo(line)


def _bench_names() -> list[str]:
    import tools.bench

    return sorted(m.name for m in pkgutil.iter_modules(tools.bench.__path__))


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="benchmark: a module in tools/bench/ (serde, ...)")],
    seconds: Annotated[float, typer.Option(help="how long each measured phase runs")] = 5.0,
):
    """Run a self-contained benchmark; figures are printed as one JSON object on the last line."""
    if name not in _bench_names():
        raise _fail(f"unknown benchmark {name!r}; available: {', '.join(_bench_names())}")
    mod = importlib.import_module(f"tools.bench.{name}")
    result = mod.run(seconds=seconds)
    typer.echo(json.dumps(result, sort_keys=True))


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="topic to follow, e.g. meter.readings.raw.v1")],
    from_beginning: Annotated[bool, typer.Option(help="start at the oldest message")] = False,
    limit: Annotated[int, typer.Option(help="stop after N messages (0 = follow forever)")] = 0,
):
    """Print a topic's messages decoded to JSON lines (either framing); Ctrl-C stops."""
    import uuid

    from confluent_kafka import Consumer

    from edream.kafka import consumer_config
    from edream.serde import DecodeError, Serde
    from edream.stack import NoBroker, resolve_bootstrap

    settings = _settings()
    try:
        bootstrap = resolve_bootstrap(settings)
    except NoBroker as exc:
        raise _fail(str(exc)) from None
    serde = Serde(settings)
    c = Consumer(
        consumer_config(
            settings,
            f"edream-tail-{uuid.uuid4().hex[:8]}",
            bootstrap,
            **{"auto.offset.reset": "earliest" if from_beginning else "latest"},
        )
    )
    c.subscribe([topic])
    n = 0
    try:
        while limit == 0 or n < limit:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            try:
                name, rec = serde.decode(m.value(), topic)
                out = {"schema": name, "partition": m.partition(), "offset": m.offset(), "value": rec}
            except DecodeError as exc:
                out = {"partition": m.partition(), "offset": m.offset(), "undecodable": str(exc)}
            typer.echo(json.dumps(out, default=lambda b: b.hex() if isinstance(b, bytes) else str(b)))
            n += 1
    except KeyboardInterrupt:
        pass
    finally:
        c.close()


def _mount_subapps() -> None:
    for name, target in SUBAPPS:
        module, attr = target.split(":")
        app.add_typer(getattr(importlib.import_module(module), attr), name=name)


def main() -> None:
    _mount_subapps()
    app(prog_name="edream")


if __name__ == "__main__":
    sys.exit(main())
