"""The ``edream`` command line."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
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
stage_app = typer.Typer(
    help="Stream stages on the runtime: each runs as its own process in the stage's consumer group (see "
    "`edream worker` to run several, `edream run` starts them all)."
)
app.add_typer(topology_app, name="topology")
app.add_typer(topics_app, name="topics")
app.add_typer(stage_app, name="stage")

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
    ("uftp", "connectors.uftp.cli:app"),
    ("openadr", "connectors.openadr.cli:app"),
    ("weather", "connectors.weather.cli:app"),
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


@stage_app.command("list")
def stage_list():
    """The topology's agents and whether each runs on the stage runtime."""
    from edream.runtime.stages import runtime_stages

    settings = _settings()
    topology = load_topology(settings.edream_topology)
    on_runtime = set(runtime_stages(topology))
    for agent in topology.agents:
        where = "runtime" if agent.name in on_runtime else "hosted in edream run (not ported yet)"
        typer.echo(f"{agent.name:<16} {where:<38} {agent.description}")


@stage_app.command("run")
def stage_run(name: Annotated[str, typer.Argument(help="agent name from topology.yaml, e.g. intervals")]):
    """Run one stage in the foreground until SIGTERM/Ctrl-C: joins the stage's consumer group on the broker of
    KAFKA_BOOTSTRAP_SERVERS, keeps its state under EDREAM_DATA_DIR/state/NAME, retries outages forever and
    publishes its health on the StageHealth topic."""
    import os

    from edream.logs import configure_logging
    from edream.runtime.stages import UnknownStage, supervisor_for

    settings = _settings()
    configure_logging(settings.edream_log_level)
    if not settings.kafka_bootstrap_servers:
        raise _fail("a stage joins a running broker: set KAFKA_BOOTSTRAP_SERVERS")
    try:
        # a hung processing loop ends this process (exit 75) so that its parent, `edream run` or `edream worker`,
        # starts it again; a thread cannot be killed
        sup = supervisor_for(
            load_topology(settings.edream_topology), name, settings, on_hang=lambda: os._exit(75)
        )
    except (UnknownStage, TopologyError) as exc:
        raise _fail(str(exc)) from None
    sup.run()


@app.command()
def worker(
    stages: Annotated[
        str | None, typer.Option(help="comma-separated stages to run (default: every stage on the runtime)")
    ] = None,
):
    """Join a running platform as one more worker: runs stage processes that share each stage's partitions with
    the other workers (consumer groups). The broker comes from KAFKA_BOOTSTRAP_SERVERS or, on the same machine,
    from the running `edream run`. The ClickHouse sink stays with the process that owns ClickHouse."""
    import signal
    import threading

    from edream.logs import configure_logging
    from edream.runtime.stages import runtime_stages
    from edream.runtime.workers import StageProcesses
    from edream.stack import RunState

    settings = _settings()
    configure_logging(settings.edream_log_level)
    if not settings.kafka_bootstrap_servers:
        live = RunState.load_live(settings)
        if live is None:
            raise _fail("no broker: set KAFKA_BOOTSTRAP_SERVERS or start `edream run` on this machine first")
        settings = settings.model_copy(update={"kafka_bootstrap_servers": live.bootstrap})
    topology = load_topology(settings.edream_topology)
    available = runtime_stages(topology)
    chosen = available if stages is None else [s.strip() for s in stages.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(available))
    if unknown:
        raise _fail(f"not stages on the runtime: {', '.join(unknown)} (available: {', '.join(available)})")
    worker_dir = settings.edream_data_dir / "workers" / str(__import__("os").getpid())
    # state and logs per worker process; market.yaml/vpp.yaml still from the platform's data (or config) dir
    env = {
        **settings.as_env(),
        "EDREAM_DATA_DIR": str(worker_dir),
        "EDREAM_CONFIG_DIR": str(settings.config_dir),
    }
    from edream.runtime.down_reporter import down_reporter

    reporter = down_reporter(settings, topology, settings.kafka_bootstrap_servers)
    procs = StageProcesses(
        chosen, worker_dir / "logs", settings.edream_data_dir / "run", env, on_down=reporter
    ).start()
    typer.echo(f"edream worker: stages {', '.join(chosen)} on {settings.kafka_bootstrap_servers}")
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    procs.stop()
    if reporter is not None:
        reporter.close()
    typer.echo("edream worker: stopped")


@app.command()
def openapi(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to this file")] = None,
):
    """Print the integrators' REST API as an OpenAPI 3.1 document (JSON), generated from topology.yaml and the Avro
    contracts: the same document a running platform serves at /api/v1/openapi.json (EDREAM_REST_PORT)."""
    from edream.rest.app import openapi_document

    text = json.dumps(openapi_document(load_topology(_settings().edream_topology)), indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n")
        typer.echo(f"wrote {output}")


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
    if (
        "error" in live
    ):  # running, but its own status did not come back: say so rather than leave the rows out
        typer.echo(f"live status unavailable ({live['error']})")
    counted_at = (live.get("clickhouse") or {}).get("counted_at")
    if counted_at:
        typer.echo(f"tables      rows as counted {max(0.0, time.time() - counted_at / 1000):.0f} s ago")
    for table, n in (live.get("clickhouse", {}).get("tables") or {}).items():
        typer.echo(f"  table {table}: {n} rows")
    anchor = (live.get("clickhouse") or {}).get("last_anchor")
    if anchor:
        typer.echo(
            f"last anchor {anchor['kind']} {anchor['window_id']}: {anchor['record_count']} records, "
            f"block {anchor['block_number']}, tx {anchor['tx_hash']}"
        )
    for r in live.get("stages") or []:
        err = f"  last error: {r['last_error']}" if r.get("last_error") else ""
        typer.echo(
            f"stage       {r['stage']:<12} {r['status']:<8} {r['worker_id']}  in {r['in_per_s']:.0f}/s "
            f"out {r['out_per_s']:.0f}/s  lag {r['lag'] if r['lag'] is not None else '?'}  "
            f"dead letters {r['dead_letters']}  restarts {r['restarts']}{err}"
        )
    lag = st.get("lag")
    if lag is not None and "total" in lag:
        busy = ", ".join(f"{t} {n}" for t, n in sorted(lag.get("by_topic", {}).items()) if n)
        typer.echo(f"lag         {lag['total']} messages" + (f" ({busy})" if busy else ""))
    elif lag is not None:  # the broker did not answer in time: say so rather than leave the line out
        typer.echo(f"lag         unknown ({lag.get('error', 'no answer')})")


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
    """Print the topic tables (Markdown) that the README carries: declared topics, then the runtime's internal ones."""
    from edream.docs import internal_topic_table, topic_table
    from edream.runtime.stages import runtime_stages

    topo = load_topology(path or _settings().edream_topology)
    typer.echo(topic_table(topo) + "\n\n" + internal_topic_table(topo, runtime_stages(topo)))


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


def _bench_options(extra: list[str]) -> dict[str, object]:
    """``--meters 1000 --workers 2`` -> {"meters": 1000, "workers": 2} (numbers as int or float)."""
    out: dict[str, object] = {}
    it = iter(extra)
    for flag in it:
        if not flag.startswith("--"):
            raise _fail(f"unexpected argument {flag!r}")
        value = next(it, None)
        if value is None:
            raise _fail(f"{flag} needs a value")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        out[flag[2:].replace("-", "_")] = value
    return out


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="benchmark: a module in tools/bench/ (serde, e2e, ...)")],
    seconds: Annotated[float, typer.Option(help="how long each measured phase runs")] = 5.0,
):
    """Run a self-contained benchmark; figures are printed as one JSON object on the last line. Options after
    the name go to the benchmark, e.g. `edream bench e2e --meters 50000 --workers 2 --seconds 60`."""
    if name not in _bench_names():
        raise _fail(f"unknown benchmark {name!r}; available: {', '.join(_bench_names())}")
    mod = importlib.import_module(f"tools.bench.{name}")
    result = mod.run(seconds=seconds, **_bench_options(list(ctx.args)))
    typer.echo(json.dumps(result, sort_keys=True))
    if result.get("passed") is False:  # a benchmark that checks invariants (chaos) failed them
        raise typer.Exit(1)


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


def _mount_subapps(argv: list[str] | None = None) -> None:
    """Mount the domains' sub-commands. Given the command line, only the one it names is imported (each pulls in
    its domain's libraries, seconds on a loaded machine: `edream status` took over 60 s, and every stage process
    paid it at start); a built-in command mounts none; no command, ``--help`` or an unknown one mounts all, so
    help lists them."""
    first = next((a for a in argv or [] if not a.startswith("-")), None)
    builtin = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands}
    builtin |= {g.name for g in app.registered_groups}
    wanted = {first} if first in {n for n, _ in SUBAPPS} else set() if first in builtin else None
    for name, target in SUBAPPS:
        if wanted is None or name in wanted:
            module, attr = target.split(":")
            app.add_typer(getattr(importlib.import_module(module), attr), name=name)


def main() -> None:
    _mount_subapps(sys.argv[1:])
    app(prog_name="edream")


if __name__ == "__main__":
    sys.exit(main())
