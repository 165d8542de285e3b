"""Faust web pages of the dashboard: HTML at ``/``, static files, JSON per panel, SSE at ``/api/stream``, drill-down
pages at ``/page/<kind>/<key>`` (data at ``/api/page/<kind>/<key>``)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web as aioweb

from edream.dashboard.hub import DashboardHub, StagesFn
from edream.dashboard.lag import consumer_lag
from edream.dashboard.pages import NotFound, discover_pages
from edream.dashboard.registry import PanelSource, discover
from edream.dashboard.sse import ShutdownSignal, sse_comment, sse_event

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "application/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
#: Seconds between two SSE pushes.
PUSH_EVERY_S = 2.0


def _bootstrap_of(app: Any) -> str:
    """``host:port,...`` from Faust's ``kafka://`` broker URLs."""
    return ",".join(f"{u.host}:{u.port}" for u in app.conf.broker)


def consumed_topics(ctx: Any) -> list[str]:
    """Topics the worker's consumer group reads: agent inputs and sink topics."""
    names = {t for a in ctx.topology.agents for t in a.inputs} | {s.topic for s in ctx.topology.sinks}
    return sorted(names)


def register_dashboard(
    app: Any,
    ctx: Any,
    hub: DashboardHub | None = None,
    stages_fn: StagesFn | None = None,
    eth_rpc_url: str | None = None,
) -> DashboardHub:
    """Add the dashboard's pages to the Faust ``app``; ``ctx`` is the worker's AgentContext, ``stages_fn`` the
    stage health rows (``/api/status`` ``stages``), ``eth_rpc_url`` the chain the console probes."""
    panels = discover()
    pages = discover_pages()
    if hub is None:
        lag_fn = functools.partial(consumer_lag, _bootstrap_of(app), app.conf.id, consumed_topics(ctx))
        hub = DashboardHub(
            ctx, panels, lag_fn=lag_fn, interval_s=PUSH_EVERY_S, stages_fn=stages_fn, eth_rpc_url=eth_rpc_url
        )

    closing = ShutdownSignal()
    app.web.web_app.on_shutdown.append(closing.set)  # before the server waits for its handlers (60 s at most)

    @app.page("/")
    async def index(web, request):  # noqa: ANN001 - faust view signature
        return web.bytes((STATIC_DIR / "index.html").read_bytes(), content_type="text/html")

    @app.page("/static/{name}")
    async def static(web, request, name: str):  # noqa: ANN001
        path = STATIC_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return web.text("not found", status=404)
        return web.bytes(path.read_bytes(), content_type=_CONTENT_TYPES.get(path.suffix, "text/plain"))

    @app.page("/api/panels")
    async def panel_list(web, request):  # noqa: ANN001
        return web.json([{"id": p.id, "title": p.title, "description": p.description} for p in panels])

    @app.page("/api/panels/{panel_id}")
    async def panel_data(web, request, panel_id: str):  # noqa: ANN001
        # the newest snapshot at once, refreshed in the background (as /api/dashboard): a client polling one panel
        # never waits for every panel's queries on a busy ClickHouse thread (seen: over 10 s under load)
        snap = await hub.cached()
        if panel_id not in snap["panels"]:
            return web.json({"error": f"unknown panel {panel_id}"}, status=404)
        return web.json(snap["panels"][panel_id])

    @app.page("/api/dashboard")
    async def dashboard(web, request):  # noqa: ANN001 - the first paint: the newest snapshot at once
        return web.json(await hub.cached())

    @app.page("/page/{kind}/{key:.+}")  # keys may hold "/" (anchor windows)
    async def drill_down(web, request, kind: str, key: str):  # noqa: ANN001
        return web.bytes((STATIC_DIR / "page.html").read_bytes(), content_type="text/html")

    @app.page("/api/page/{kind}/{key:.+}")
    async def drill_down_data(web, request, kind: str, key: str):  # noqa: ANN001
        if kind not in pages:
            return web.json({"error": f"no page kind {kind}; known: {', '.join(sorted(pages))}"}, status=404)
        src = PanelSource(client=ctx.clickhouse, now_ms=int(time.time() * 1000), tables=hub.tables)
        try:
            return web.json(await ctx.in_clickhouse_thread(pages[kind], src, key))
        except NotFound as exc:
            return web.json({"error": str(exc)}, status=404)

    @app.page("/api/stream")
    async def stream(web, request):  # noqa: ANN001
        resp = aioweb.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await resp.prepare(request)
        await resp.write(sse_event({"panels": [p.id for p in panels]}, event="hello", retry_ms=3000))
        sent = -1
        try:
            while (snap := await closing.until(hub.latest())) is not None:
                if snap["version"] != sent:
                    await resp.write(sse_event(snap, event="snapshot", event_id=str(snap["version"])))
                    sent = snap["version"]
                else:
                    await resp.write(sse_comment())
                if await closing.wait(PUSH_EVERY_S):
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return resp

    @app.page("/api/verify")
    async def verify(web, request):  # noqa: ANN001
        kind, window = request.query.get("kind", ""), request.query.get("window", "")
        if not kind or not window:
            return web.json(
                {"status": "ERROR", "error": "query parameters kind and window are required"}, status=400
            )
        report = await ctx.in_clickhouse_thread(_verify_window, ctx, kind.upper(), window)
        return web.json(report)

    @app.page("/api/verify/record")
    async def verify_record(web, request):  # noqa: ANN001
        sid = request.query.get("id", "")
        if not sid:
            return web.json({"status": "ERROR", "error": "query parameter id is required"}, status=400)
        report = await ctx.in_clickhouse_thread(_verify_record, ctx, sid)
        return web.json(report)

    log.info("dashboard: %d panels (%s)", len(panels), ", ".join(p.id for p in panels))
    return hub


def _verification(ctx: Any, check: Callable[[Any], Any], cli: str) -> dict[str, Any]:
    """Run one anchoring-service check inside the platform (which owns the embedded chDB)."""
    try:
        from streams.anchoring.service import AnchoringService, connect
        from streams.anchoring.store import AnchorStore

        service = AnchoringService(connect(ctx.settings, sign=False), AnchorStore(ctx.clickhouse))
        return check(service).to_dict()
    except Exception as exc:  # noqa: BLE001 - the page shows why it cannot verify
        return {"status": "ERROR", "error": f"cannot verify: {exc}", "cli": cli}


def _verify_window(ctx: Any, kind: str, window: str) -> dict[str, Any]:
    """Recompute the window's Merkle root from ClickHouse and compare it with the chain."""
    return _verification(
        ctx, lambda s: s.verify_window(kind, window), f"edream verify window {kind} {window}"
    )


def _verify_record(ctx: Any, settlement_id: str) -> dict[str, Any]:
    """One record's Merkle proof against the on-chain root."""
    return _verification(
        ctx, lambda s: s.verify_record(settlement_id), f"edream verify record {settlement_id}"
    )
