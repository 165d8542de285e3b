"""Bearer-token authentication of the platform's web API (``/api/*``, ``/metrics``).

The token is ``EDREAM_API_TOKEN``, or the first line of the file ``EDREAM_API_TOKEN_FILE`` (a mounted secret).
It is required when the web server binds outside loopback (``EDREAM_WEB_HOST`` other than 127.0.0.0/8, ::1 or
``localhost``): :func:`api_token` then refuses to start without one. On loopback it is optional: without a token
the API is open to local processes only. Tokens are compared in constant time (:func:`hmac.compare_digest`); a
request without the right ``Authorization: Bearer <token>`` gets 401 with an RFC 9457 ``application/problem+json``
body and a ``WWW-Authenticate: Bearer`` challenge.

The dashboard page and its static files stay public (no data in them); the browser's ``EventSource`` cannot send
headers, so ``/api/stream`` also accepts the RFC 6750 ``access_token`` query parameter, which the page takes from
its own ``#token=...`` fragment (never sent to the server in the page request). OIDC is not built in: put an
OIDC-aware reverse proxy in front and keep the token between proxy and platform.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from edream.settings import Settings

MIN_TOKEN_CHARS = 16
PROTECTED_PREFIXES = ("/api/", "/metrics")
QUERY_TOKEN_PATHS = ("/api/stream",)  # EventSource cannot set headers


class WebAuthError(ValueError):
    """The web API cannot start safely (no token outside loopback, unreadable or too short token)."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses; any other name or address (incl. 0.0.0.0) is not."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_token(settings: Settings) -> str | None:
    """The configured token, or None on loopback without one; raises :class:`WebAuthError` naming the setting."""
    token: str | None = None
    if settings.edream_api_token is not None:
        token = settings.edream_api_token.get_secret_value().strip()
    elif settings.edream_api_token_file is not None:
        path = settings.edream_api_token_file
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise WebAuthError(f"EDREAM_API_TOKEN_FILE: cannot read {path}: {exc.strerror or exc}") from None
        token = lines[0].strip() if lines else ""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise WebAuthError(
            f"EDREAM_API_TOKEN{'_FILE' if settings.edream_api_token is None else ''}: the token must have at "
            f"least {MIN_TOKEN_CHARS} characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe())'`)"
        )
    if token is None and not is_loopback(settings.edream_web_host):
        raise WebAuthError(
            f"EDREAM_WEB_HOST={settings.edream_web_host} is not a loopback address: set EDREAM_API_TOKEN (or "
            "EDREAM_API_TOKEN_FILE) so the web API is not open to the network, or bind to 127.0.0.1"
        )
    return token


def auth_headers(settings: Settings) -> dict[str, str]:
    """``Authorization`` header for clients of the running platform (``edream status``, ``edream verify`` ...)."""
    token = api_token(settings.model_copy(update={"edream_web_host": "127.0.0.1"}))  # clients do not bind
    return {"Authorization": f"Bearer {token}"} if token else {}


def problem(status: int, title: str, detail: str, **headers: str) -> web.Response:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/problem+json", headers=headers
    )


def presented_token(request: web.BaseRequest) -> str | None:
    """The bearer token of the request (header, or ``access_token`` on the SSE stream), else None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.path in QUERY_TOKEN_PATHS:
        return request.query.get("access_token") or None
    return None


def token_matches(presented: str | None, token: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_middleware(token: str) -> Any:
    """aiohttp middleware: protected paths need ``token``; others pass."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(PROTECTED_PREFIXES):
            presented = presented_token(request)
            if not token_matches(presented, token):
                detail = "missing bearer token" if presented is None else "invalid bearer token"
                return problem(
                    401,
                    "Unauthorized",
                    f"{detail}: send 'Authorization: Bearer <EDREAM_API_TOKEN>'",
                    **{"WWW-Authenticate": 'Bearer realm="edream"'},
                )
        return await handler(request)

    return middleware


def install(app: Any, settings: Settings) -> bool:
    """Protect the Faust ``app``'s web server when a token is configured (True), else leave it open (loopback
    only, enforced by :func:`api_token`). Call before the worker starts."""
    token = api_token(settings)
    if token is None:
        return False
    app.web.web_app.middlewares.append(bearer_middleware(token))
    return True
