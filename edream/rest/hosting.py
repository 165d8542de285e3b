"""Host the REST API in the platform worker: ClickHouse through the worker's client (the embedded chDB belongs
to this process), submissions through an :class:`~edream.rest.producer.AckedProducer`, served on
``EDREAM_WEB_HOST:EDREAM_REST_PORT`` while the worker runs."""

from __future__ import annotations

import logging
from typing import Any

from mode import Service

from edream.rest.app import PREFIX, build_api
from edream.rest.producer import AckedProducer
from edream.rest.server import RestServer
from edream.web_auth import api_token

log = logging.getLogger(__name__)


def _rows(client: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return client.query(sql, parameters=params).result_rows


def register_rest_api(app: Any, ctx: Any, bootstrap: str) -> RestServer | None:
    """Add the REST API as a service of the Faust ``app`` (``ctx``: the worker's AgentContext); None when
    ``EDREAM_REST_PORT`` is 0. Raises ResourceError before anything starts when a resource does not match the
    topology."""
    settings = ctx.settings
    if not settings.edream_rest_port:
        return None
    producer = AckedProducer(settings, bootstrap)

    async def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await ctx.in_clickhouse_thread(_rows, ctx.clickhouse, sql, params)

    api = build_api(ctx.topology, ctx.serde, query, producer.send, api_token(settings))
    server = RestServer(api, settings.edream_web_host, settings.edream_rest_port)

    @app.service
    class _RestApi(Service):
        async def on_start(self) -> None:
            await server.start()
            log.info(
                "REST API on http://%s:%d%s (OpenAPI: %s/openapi.json)",
                server.host,
                server.port,
                PREFIX,
                PREFIX,
            )

        async def on_stop(self) -> None:
            await server.stop()
            producer.close()

    return server
