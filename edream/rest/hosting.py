"""Host the REST API in the platform worker: ClickHouse through the worker's client (the embedded chDB belongs
to this process), submissions through an :class:`~edream.rest.producer.AckedProducer`, served on
``EDREAM_WEB_HOST:EDREAM_REST_PORT`` while the worker runs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mode import Service

from edream.rest.app import PREFIX, build_api
from edream.rest.producer import AckedProducer
from edream.rest.server import RestServer
from edream.web_auth import api_token

log = logging.getLogger(__name__)


#: a REST query that runs longer is stopped (503 naming TIMEOUT_EXCEEDED): it holds the worker's one ClickHouse
#: thread, which the sinks, the console and anchoring share
QUERY_TIMEOUT_S = 10


def query_rows(client: Any, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows of one REST query, stopped by ClickHouse after :data:`QUERY_TIMEOUT_S`."""
    return client.query(sql, parameters=params, settings={"max_execution_time": QUERY_TIMEOUT_S}).result_rows


def register_rest_api(app: Any, ctx: Any, bootstrap: str) -> RestServer | None:
    """Add the REST API as a service of the Faust ``app`` (``ctx``: the worker's AgentContext); None when
    ``EDREAM_REST_PORT`` is 0. Raises ResourceError before anything starts when a resource does not match the
    topology."""
    settings = ctx.settings
    if not settings.edream_rest_port:
        return None
    producer = AckedProducer(settings, bootstrap)

    one_at_a_time = asyncio.Semaphore(1)

    async def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        # one REST query at a time on the shared ClickHouse thread: a client sending many cannot queue them ahead of
        # the sinks' inserts (each waits behind at most one REST query); the others wait here, off that thread
        async with one_at_a_time:
            return await ctx.in_clickhouse_thread(query_rows, ctx.clickhouse, sql, params)

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
