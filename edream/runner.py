"""``edream run``: the embedded stack, topics, the Faust worker with every topology agent, the web endpoints."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import faust
from mode import Service
from prometheus_client import Gauge, generate_latest

from edream import web_auth
from edream.clickhouse import get_client
from edream.embedded.field_site import FieldSite
from edream.embedded.process import port_open
from edream.embedded.watchdog import ChildWatchdog
from edream.kafka import apply_topics
from edream.kafka_security import KafkaSecurity
from edream.rest.hosting import register_rest_api
from edream.runtime.down_reporter import StageDownReporter, down_reporter
from edream.runtime.health_board import StageHealthBoard
from edream.runtime.stages import runtime_stages
from edream.runtime.workers import StageProcesses
from edream.serde import Serde
from edream.settings import Settings
from edream.sink_counts import SinkCounts
from edream.stack import ComponentStatus, RunState, Stack
from edream.topology import load_topology
from edream.web_auth import api_token
from streams.app import AgentContext, create_app, register_agents

log = logging.getLogger("edream.run")
COUNTERS = Gauge("edream_counter", "Platform counters (rows sunk, dead letters, ...)", ["name"])


class AlreadyRunning(RuntimeError):
    """Another platform owns this data dir (chDB allows one process) or the web port is taken."""


def build_worker_app(
    settings: Settings, stack: Stack, demo: bool, web_port: int
) -> tuple[faust.App, AgentContext]:
    topology = load_topology(settings.edream_topology)
    ctx = AgentContext(settings, topology, Serde(settings), get_client(settings))
    app = create_app(settings, stack.bootstrap, web_port=web_port)
    if web_auth.install(app, settings):
        log.info("web API: bearer token required on /api/* and /metrics")
    on_runtime = runtime_stages(topology)
    hosted = [a.name for a in topology.agents if a.name not in on_runtime]
    agents = register_agents(app, ctx, only=hosted) + on_runtime
    log.info(
        "agents hosted here: %s; stage processes: %s", ", ".join(hosted), ", ".join(on_runtime) or "none"
    )
    health = StageHealthBoard(settings, topology, stack.bootstrap)
    sink_counts = SinkCounts(ctx)

    @app.service
    class _HealthBoard(Service):  # follows platform.stage.health.v1 once the worker runs
        async def on_start(self) -> None:
            await asyncio.get_running_loop().run_in_executor(None, health.start)

        async def on_stop(self) -> None:
            health.stop()

    @app.page("/api/status")
    async def status(web, request):  # noqa: ANN001 - faust view signature
        ch = await sink_counts.get()
        return web.json(
            {
                "broker": stack.bootstrap,
                "clickhouse": ch,
                "ethereum": stack.eth_rpc_url,
                "counters": ctx.counters,
                "agents": agents,
                "stages": health.rows(),
                "time_ms": int(time.time() * 1000),
            }
        )

    @app.page("/api/vpp/pv-history")
    async def pv_history(web, request):  # noqa: ANN001 - faust view signature
        """A meter's 15-minute intervals for ``edream vpp degradation`` (the embedded chDB is this process's):
        rows of ``[interval_start ms, interval_end ms, export_wh, completeness]``."""
        from streams.vpp.pv_degradation import history_sql, intervals_table

        device = request.query.get("device_id", "")
        if not device:
            return web.json({"error": "query parameter device_id is required"}, status=400)
        table = intervals_table(ctx.topology)
        if ctx.clickhouse is None or table is None:
            return web.json({"error": "no ClickHouse intervals table in this platform"}, status=503)

        def query() -> list[list]:
            res = ctx.clickhouse.query(history_sql(table), parameters={"device": device})
            return [list(r) for r in res.result_rows]

        return web.json({"device_id": device, "table": table, "rows": await ctx.in_clickhouse_thread(query)})

    from edream.dashboard import register_dashboard

    console = register_dashboard(app, ctx, stages_fn=health.rows, eth_rpc_url=stack.eth_rpc_url)
    register_rest_api(app, ctx, stack.bootstrap)  # integrators' REST API (EDREAM_REST_PORT)

    @app.page("/metrics")
    async def metrics(web, request):  # noqa: ANN001
        for k, v in ctx.counters.items():
            COUNTERS.labels(k).set(v)
        health.export_metrics()
        await (
            console.latest()
        )  # the console's alert inputs (edream_flex_shortfall_kw, ...) for the alert rules
        # aiohttp refuses a charset inside content_type; Prometheus' text format 0.0.4 is plain UTF-8 text
        return web.text(generate_latest().decode(), content_type="text/plain")

    if demo:
        from edream.demo.wiring import register_demo

        register_demo(app, ctx)  # simulated community + scripted day (edream/demo/)

        @app.timer(15.0)
        async def report():
            ch = await sink_counts.get()
            log.info("clickhouse rows: %s", ch.get("tables", ch))

    return app, ctx


def run_platform(settings: Settings, demo: bool = True, field_sim: bool = True) -> None:
    """Run until Ctrl-C. ``demo``: the scripted community day; ``field_sim`` (only with ``demo``): protocol
    simulators + a connector process feeding ``meter.readings.raw.v1`` through MQTT/Modbus/OPC UA/HTTP."""
    topology = load_topology(settings.edream_topology)  # fail fast before starting anything
    api_token(settings)  # WebAuthError: bound outside loopback without EDREAM_API_TOKEN
    KafkaSecurity.from_settings(settings)  # KafkaSecurityError: inconsistent SASL/TLS settings
    live = RunState.load_live(settings)
    if live:
        raise AlreadyRunning(
            f"edream is already running on {settings.edream_data_dir} (pid {live.pid}, {live.web_url}); "
            "stop it or set EDREAM_DATA_DIR"
        )
    if port_open(settings.edream_web_host, settings.edream_web_port):
        raise AlreadyRunning(
            f"port {settings.edream_web_port} on {settings.edream_web_host} is in use; set EDREAM_WEB_PORT"
        )
    if settings.edream_rest_port and port_open(settings.edream_web_host, settings.edream_rest_port):
        raise AlreadyRunning(
            f"port {settings.edream_rest_port} on {settings.edream_web_host} is in use; set EDREAM_REST_PORT "
            "(0 turns the REST API off)"
        )
    if demo and not settings.model_fields_set & {"anchor_window_minutes", "anchor_grace_minutes"}:
        # the demo's settlements (15-min market slots; 1-minute flex slots with DEMO_TIMELAPSE) anchor within
        # minutes, not half an hour
        settings = settings.model_copy(update={"anchor_window_minutes": 1.0, "anchor_grace_minutes": 0.25})
        log.info("demo: anchoring 1-minute settlement windows (ANCHOR_WINDOW_MINUTES overrides)")
    if demo and "grid_configs" not in settings.model_fields_set:
        # the demo community on its simbench grid: the grid stage forecasts its congestion, the demo DSO asks for it
        from edream.demo.grid import DEMO_GRID_CONFIG

        settings = settings.model_copy(update={"grid_configs": str(DEMO_GRID_CONFIG)})
        log.info("demo: the community's grid %s (GRID_CONFIGS overrides)", DEMO_GRID_CONFIG.name)
    stack = Stack(settings).start()
    state_path = RunState.path(settings)
    field = FieldSite(settings.edream_data_dir, stack.bootstrap, state_dir=stack.state_dir)
    counterparts: list[Any] = []  # the demo's DSO and OpenADR site (edream.embedded.demo_sites.ChildGroup)
    children_dog = ChildWatchdog([])  # restarts a dead child of the field site or of the counterparts
    stages: StageProcesses | None = None
    reporter: StageDownReporter | None = None
    feeders_stopped = False

    def stop_feeders(steps: _ShutdownSteps) -> None:
        """Stop what feeds the sinks (once): the demo's counterparts and field site, then the stage processes."""
        nonlocal feeders_stopped
        if feeders_stopped:
            return
        feeders_stopped = True
        children_dog.stop()  # before they are stopped on purpose
        for group in counterparts:
            group.stop()
        field.stop()
        steps.done("demo DSO, OpenADR site and field site")
        if stages is not None:
            stages.stop()
            steps.done("stage processes")

    watchdog = stack.watchdog().start()  # a killed broker, object store or anvil is started again
    try:
        diff = apply_topics(stack.bootstrap, topology.topics)
        for line in diff.lines():
            log.info("topics: %s", line)
        if demo and field_sim and field.start():
            log.info(
                "field site: %s", ", ".join(f"{c.name} pid {c.proc.pid}" for c in field.children if c.proc)
            )
        if demo:
            from edream.demo.script import DemoConfig
            from edream.demo.wiring import market_for_demo, now_ms

            # before the stages start: the market stage reads market.yaml once, at its start
            market_for_demo(settings.config_dir, now_ms(), DemoConfig())
        port = settings.edream_web_port
        reporter = down_reporter(settings, topology, stack.bootstrap)
        stages = StageProcesses(
            runtime_stages(topology),
            settings.edream_data_dir / "logs",
            stack.state_dir,
            {**settings.as_env(), **stack.child_env()},
            on_down=reporter,
        ).start()
        if demo:  # after the stages: the DSO's first request comes 45 s later, when the desk has caught up
            counterparts = _start_demo_counterparts(settings, stack)
        watched = [w for group in (field.group, *counterparts) for w in group.watched()]
        children_dog = ChildWatchdog(watched).start()
        app, ctx = build_worker_app(settings, stack, demo, port)
        web = f"http://{settings.edream_web_host}:{port}"
        RunState.of_this_process(
            bootstrap=stack.bootstrap,
            web_url=web,
            clickhouse_dsn=settings.effective_clickhouse_dsn.split("@")[-1],
            eth_rpc_url=stack.eth_rpc_url,
        ).save(settings)
        _print_banner(stack, settings, web)
        _PlatformWorker(
            app,
            before_stop=lambda: stop_feeders(_ShutdownSteps()),
            loglevel=settings.edream_log_level.lower(),
            quiet=True,
            override_logging=False,
        ).execute_from_commandline()
    finally:
        steps = _ShutdownSteps()
        watchdog.stop()
        # The stopped services' Kafka clients sit in reference cycles (a consumer's callbacks point back at their
        # service): collect them now, while the broker still runs, or librdkafka keeps reconnecting to it and
        # prints "Connection refused" after the broker is gone.
        released = gc.collect()
        log.debug("released %d objects of stopped services before stopping the broker", released)
        stop_feeders(steps)
        if reporter is not None:
            reporter.close()
        stack.stop()
        steps.done("broker, object store and chain")
        state_path.unlink(missing_ok=True)
        print("edream: stopped (embedded broker and chain shut down)", flush=True)
        exit_within(EXIT_GRACE_S, code=0 if sys.exc_info()[0] in (None, KeyboardInterrupt) else 1)


#: seconds the interpreter may take to exit after an orderly shutdown before :func:`exit_within` ends it
EXIT_GRACE_S = 15.0


def exit_within(grace_s: float, code: int) -> None:
    """Everything is stopped and flushed: if a library thread that is not a daemon (a Kafka client's, a
    server's) still keeps the interpreter from exiting after ``grace_s``, name those threads on stderr and exit
    with ``code`` anyway, so that Ctrl-C always ends ``edream run`` (seen once under load: stopped, but the
    process still there 60 s later)."""

    def watch() -> None:
        time.sleep(grace_s)
        alive = [t.name for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()]
        print(
            f"edream: the interpreter had not exited {grace_s:.0f} s after the shutdown (threads still running: "
            f"{', '.join(alive) or 'none'}); exiting",
            file=sys.stderr,
            flush=True,
        )
        os._exit(code)

    threading.Thread(target=watch, name="exit-watchdog", daemon=True).start()


def _start_demo_counterparts(settings: Settings, stack: Stack) -> list[Any]:
    """The demo's DSO (over UFTP: it answers the desk's offers; FLEX_AUTO_ACCEPT=true makes the desk accept them
    itself) and OpenADR site, started; one that cannot start is logged and the platform runs on without it."""
    from edream.demo.community import Community
    from edream.demo.dso import CONGESTION_POINT
    from edream.demo.grid import dso_congestion_points
    from edream.demo.script import DemoConfig, controllable_prosumer
    from edream.embedded.demo_sites import dso_site, openadr_site

    cfg, env = DemoConfig(), {**os.environ, **settings.as_env(), **stack.child_env()}
    data, state = settings.edream_data_dir, stack.state_dir
    points = dso_congestion_points(settings.grid_configs, CONGESTION_POINT)
    if not points:
        log.info("demo DSO: the demo grid is not in GRID_CONFIGS: it sends its timed requests")
    timelapse = settings.demo_timelapse
    groups = [
        dso_site(data, env, settings.uftp_port, cfg.prosumers, cfg.seed, cfg.dso, state, points, timelapse)
    ]
    site = controllable_prosumer(Community(cfg.prosumers, cfg.seed))
    if site is not None:
        groups.append(openadr_site(data, env, site, state_dir=state))
    started = []
    for group in groups:
        try:
            if group.start():
                log.info("%s: %s", group.name, group.describe())
                started.append(group)
        except RuntimeError as exc:
            log.error("%s not started: %s", group.name, exc)
    return started


class _PlatformWorker(faust.Worker):
    """The Faust worker of ``edream run``: on SIGINT/SIGTERM it runs ``before_stop`` (off the event loop, while
    the app still consumes) before it stops the app."""

    def __init__(self, app: faust.App, *, before_stop: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._before_stop = before_stop

    async def _stop_on_signal(self, signal: Any) -> None:  # mode.Worker's handler of SIGINT and SIGTERM
        # first what feeds the sinks: the app's sinks then write the last records the stages produced, and no sink
        # partition gets records after its consumer paused (Faust would report that stream as stalled)
        log.info("stopping: field site and stage processes first, then the sinks")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._before_stop)
        except Exception:  # noqa: BLE001 - the app must stop all the same
            log.exception("stopping the field site and stage processes failed")
        await super()._stop_on_signal(signal)


class _ShutdownSteps:
    """Logs how long each part of the shutdown took (an operator waiting on Ctrl-C sees where the time goes)."""

    def __init__(self) -> None:
        self.t0 = self.last = time.monotonic()

    def done(self, what: str) -> None:
        now = time.monotonic()
        log.info("stopped %s in %.1f s", what, now - self.last)
        self.last = now


def _print_banner(stack: Stack, settings: Settings, web: str) -> None:
    rows = [
        ComponentStatus(
            "kafka",
            stack.bootstrap + (f" (embedded Tansu, {stack.broker.storage})" if stack.broker else ""),
            True,
        ),
        ComponentStatus("clickhouse", settings.effective_clickhouse_dsn.split("@")[-1], True),
        ComponentStatus(
            "ethereum", f"{stack.eth_rpc_url}" + (" (embedded anvil)" if stack.chain else ""), True
        ),
    ]
    print("\nedream is running. Ctrl-C stops it.", flush=True)
    for r in rows:
        print(f"  {r.name:<11} {r.where}", flush=True)
    for name, addr in stack.contracts.items():
        print(f"  contract    {name} at {addr}", flush=True)
    print(f"  dashboard   {web}/", flush=True)
    print(f"  status      {web}/api/status   (or `edream status`)", flush=True)
    print(f"  metrics     {web}/metrics", flush=True)
    if settings.edream_rest_port:
        rest = f"http://{settings.edream_web_host}:{settings.edream_rest_port}/api/v1"
        print(f"  rest api    {rest}   (OpenAPI: {rest}/openapi.json)", flush=True)
    print("  data        `edream tail meter.readings.raw.v1`\n", flush=True)
