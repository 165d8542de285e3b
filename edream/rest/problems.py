"""RFC 9457 problem details for every error of the REST API (``application/problem+json``): a refused body or query
names each field (``errors[].field``, e.g. ``slots[0].kw``) with what is wrong; unknown paths, missing tokens and
an unreachable broker or ClickHouse get the same shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raised by a handler: answered as a problem with ``status``, ``title`` and ``detail``."""

    def __init__(
        self, status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
    ):
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers, self.extra = status, title, detail, headers, extra


def problem_response(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("body", "slots", 0, "kw")`` -> ``slots[0].kw`` (the location's first part says where: body, query...)."""
    out = ""
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(loc[0])


def validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {"field": field_path(e["loc"]), "in": str(e["loc"][0]), "message": e["msg"]}
        for e in errors
        if e.get("loc")
    ]


def install(app: FastAPI) -> None:
    """Answer validation errors, HTTP errors and :class:`Problem` as problem details."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(list(exc.errors()))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        return problem_response(422, "Unprocessable Content", detail, errors=errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers) if exc.headers else None
        title = {401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}.get(
            exc.status_code, "Error"
        )
        return problem_response(exc.status_code, title, str(exc.detail), headers)

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.headers, **exc.extra)
