"""The integrators' REST API (FastAPI): read the platform's flexibility, forecast, baseline and market records
from ClickHouse and submit signed requests, acceptances and orders to Kafka; the OpenAPI document is generated from
the Avro contracts and served at ``/api/v1/openapi.json``.

A submission is accepted (202) once the broker has acknowledged it; the stage that reads the topic decides. Its
outcome is read back like every other record: the request's offers, or a Rejection whose ``subject_id`` is the
submitted id (the ``Location`` and ``Link`` headers of the answer). Submitting the same record again is safe: the
stages and sinks de-duplicate on its ids. Errors are RFC 9457 problem details (:mod:`edream.rest.problems`).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.exceptions import HTTPException

from edream.rest import problems
from edream.rest.avro_models import avro_model
from edream.rest.problems import Problem
from edream.rest.queries import MAX_LIMIT, ReadQuery, RowShaper, select_sql
from edream.rest.resources import READS, SUBMITS, BoundRead, BoundSubmit, bind_read, bind_submit
from edream.serde import Serde
from edream.topology import Topology
from edream.web_auth import token_matches

PREFIX = "/api/v1"
#: (sql, parameters) -> result rows
QueryFn = Callable[[str, dict[str, Any]], Awaitable[list[tuple[Any, ...]]]]
#: (topic, key, value) -> (partition, offset) once the broker acknowledged; raises when it did not
ProduceFn = Callable[[str, bytes | None, bytes], Awaitable[tuple[int, int]]]


class ReadParams(BaseModel):
    """Query parameters every read resource takes (its identifier filters are added per resource)."""

    model_config = ConfigDict(extra="forbid")
    since_ms: int | None = Field(None, description="Rows whose time column is at or after this, UTC epoch ms")
    until_ms: int | None = Field(None, description="Rows whose time column is before this, UTC epoch ms")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Newest rows returned")


class Accepted(BaseModel):
    """A submission the broker acknowledged; the stage reading ``topic`` decides on it."""

    topic: str
    partition: int
    offset: int
    id: str = Field(description="The submitted record's id (request_id, acceptance_id or order_id)")
    status_url: str = Field(description="Where the record (or its effect) is listed once processed")
    rejections_url: str = Field(description="Where a refusal of this record appears (Rejection, subject_id)")


def _title(path: str) -> str:
    return "".join(p.capitalize() for p in path.replace("-", "/").split("/"))


def _read_route(router: APIRouter, bound: BoundRead, query: QueryFn) -> None:
    model = avro_model(bound.schema)
    name = _title(bound.resource.path)
    filters = {c: (str | None, Field(None, description=f"Only rows with this {c}")) for c in bound.filters}
    params_model = create_model(f"{name}Params", __base__=ReadParams, **filters)  # type: ignore[call-overload]
    page_model = create_model(f"{name}Page", items=(list[model], ...), count=(int, ...))  # type: ignore[valid-type]
    shaper = RowShaper(bound)
    t = bound.resource.time_column

    async def read(params: Annotated[params_model, Query()]) -> Any:  # type: ignore[valid-type]
        values = params.model_dump()  # type: ignore[attr-defined]
        q = ReadQuery(
            equals={c: values[c] for c in bound.filters if values.get(c) is not None},
            since_ms=values["since_ms"],
            until_ms=values["until_ms"],
            limit=values["limit"],
        )
        sql, sql_params = select_sql(bound, q)
        try:
            rows = await query(sql, sql_params)
        except Exception as exc:  # noqa: BLE001 - any ClickHouse failure is an outage for the caller
            raise Problem(
                503, "Service Unavailable", f"ClickHouse: {type(exc).__name__}: {exc}", {"Retry-After": "5"}
            ) from exc
        items = [shaper.record(r) for r in rows]
        return {"items": items, "count": len(items)}

    router.add_api_route(
        f"/{bound.resource.path}",
        read,
        methods=["GET"],
        response_model=page_model,
        summary=bound.resource.summary,
        description=f"Rows of ClickHouse table `{bound.table}` ({bound.schema} records), newest `{t}` first.",
        operation_id=f"list{name}",
        tags=[bound.resource.path.split("/")[0]],
    )


def _submit_route(router: APIRouter, bound: BoundSubmit, serde: Serde, produce: ProduceFn) -> None:
    res = bound.resource
    model = avro_model(res.schema)

    async def submit(body: model) -> JSONResponse:  # type: ignore[valid-type]
        record = body.model_dump()  # type: ignore[attr-defined]
        try:
            value = serde.encode(res.schema, record, bound.topic)
        except (ValueError, TypeError, OverflowError) as exc:
            raise Problem(422, "Unprocessable Content", f"not a valid {res.schema}: {exc}") from exc
        key = str(record[bound.key_field]).encode() if bound.key_field else None
        try:
            partition, offset = await produce(bound.topic, key, value)
        except Exception as exc:  # noqa: BLE001 - not acknowledged: the client may submit the same record again
            raise Problem(
                503,
                "Service Unavailable",
                f"the broker did not acknowledge the record ({exc}); submitting it again is safe",
                {"Retry-After": "5"},
            ) from exc
        rid = str(record[res.id_field])
        status_url = f"{PREFIX}/{res.path}?{res.id_field}={quote(rid, safe='')}"
        rejections_url = f"{PREFIX}/rejections?subject_id={quote(rid, safe='')}"
        answer = Accepted(
            topic=bound.topic,
            partition=partition,
            offset=offset,
            id=rid,
            status_url=status_url,
            rejections_url=rejections_url,
        )
        return JSONResponse(
            answer.model_dump(),
            status_code=202,
            headers={"Location": status_url, "Link": f'<{rejections_url}>; rel="related"'},
        )

    router.add_api_route(
        f"/{res.path}",
        submit,
        methods=["POST"],
        status_code=202,
        response_model=Accepted,
        responses={422: {"description": "Invalid body (RFC 9457 problem naming the fields)"}},
        summary=res.summary,
        description=(
            f"Produces one {res.schema} to `{bound.topic}` and answers once the broker acknowledged it. "
            "Signatures and business rules are checked by the stage: a refusal is a Rejection with "
            f"`subject_id` = `{res.id_field}`."
        ),
        operation_id=f"submit{_title(res.path)}",
        tags=[res.path.split("/")[0]],
    )


def _auth(token: str | None) -> Callable[..., Awaitable[None]]:
    bearer = HTTPBearer(auto_error=False, description="EDREAM_API_TOKEN (required outside loopback)")

    async def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if token is None:
            return
        presented = credentials.credentials if credentials else None
        if not token_matches(presented, token):
            detail = "missing bearer token" if presented is None else "invalid bearer token"
            raise HTTPException(
                401,
                f"{detail}: send 'Authorization: Bearer <EDREAM_API_TOKEN>'",
                headers={"WWW-Authenticate": 'Bearer realm="edream"'},
            )

    return authorized


def build_api(
    topology: Topology, serde: Serde, query: QueryFn, produce: ProduceFn, token: str | None = None
) -> FastAPI:
    """The REST app; raises :class:`~edream.rest.resources.ResourceError` when a resource does not match the
    topology (checked before anything serves)."""
    app = FastAPI(
        title="edream integration API",
        version="1",
        description=__doc__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # the Swagger UI loads from a CDN: point any OpenAPI viewer at the document instead
        redoc_url=None,
    )
    problems.install(app)
    router = APIRouter(prefix=PREFIX, dependencies=[Depends(_auth(token))])
    for r in READS:
        _read_route(router, bind_read(topology, r), query)
    for s in SUBMITS:
        _submit_route(router, bind_submit(topology, s), serde, produce)
    app.include_router(router)
    return app


def openapi_document(topology: Topology) -> dict[str, Any]:
    """The OpenAPI document the platform serves at ``/api/v1/openapi.json``, without a platform (for code
    generators and reviews: ``edream openapi``)."""

    async def unused(*_: Any) -> Any:
        raise RuntimeError("the document only")

    return build_api(topology, Serde(), unused, unused).openapi()
