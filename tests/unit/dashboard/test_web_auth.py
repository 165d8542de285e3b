"""Bearer-token rules of the web API: required outside loopback, optional on it, 401 problem+json otherwise."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from edream.settings import Settings
from edream.web_auth import WebAuthError, api_token, auth_headers, bearer_middleware, is_loopback

TOKEN = "t0ken-with-enough-characters"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("edream.example", False),
    ],
)
def test_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_token_optional_on_loopback_required_outside():
    assert api_token(Settings(edream_web_host="127.0.0.1")) is None
    with pytest.raises(
        WebAuthError, match="EDREAM_WEB_HOST=0.0.0.0 is not a loopback address: set EDREAM_API_TOKEN"
    ):
        api_token(Settings(edream_web_host="0.0.0.0"))
    assert api_token(Settings(edream_web_host="0.0.0.0", edream_api_token=TOKEN)) == TOKEN


def test_token_from_file_and_bad_tokens_named(tmp_path):
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert api_token(Settings(edream_web_host="0.0.0.0", edream_api_token_file=f)) == TOKEN
    with pytest.raises(WebAuthError, match="EDREAM_API_TOKEN_FILE: cannot read"):
        api_token(Settings(edream_api_token_file=tmp_path / "missing"))
    with pytest.raises(WebAuthError, match="EDREAM_API_TOKEN: the token must have at least 16 characters"):
        api_token(Settings(edream_api_token="short"))
    # clients send the token whatever host the server binds
    assert auth_headers(Settings(edream_web_host="0.0.0.0", edream_api_token=TOKEN)) == {
        "Authorization": f"Bearer {TOKEN}"
    }
    assert auth_headers(Settings()) == {}


async def _requests() -> dict[str, tuple[int, str, dict | str]]:
    app = web.Application(middlewares=[bearer_middleware(TOKEN)])
    for path in ("/", "/api/status", "/api/stream", "/metrics"):
        app.router.add_get(path, lambda request: web.json_response({"ok": True}))
    out = {}
    async with TestClient(TestServer(app)) as client:
        cases = {
            "page": ("/", {}),
            "none": ("/api/status", {}),
            "wrong": ("/api/status", {"Authorization": "Bearer " + TOKEN[:-1] + "X"}),
            "basic": ("/api/status", {"Authorization": f"Basic {TOKEN}"}),
            "right": ("/api/status", {"Authorization": f"Bearer {TOKEN}"}),
            "metrics": ("/metrics", {}),
            "query-on-status": (f"/api/status?access_token={TOKEN}", {}),
            "query-on-stream": (f"/api/stream?access_token={TOKEN}", {}),
        }
        for name, (path, headers) in cases.items():
            r = await client.get(path, headers=headers)
            body = await r.json(content_type=None)
            out[name] = (r.status, r.headers.get("Content-Type", ""), body, r.headers.get("WWW-Authenticate"))
    return out


def test_middleware_over_real_http():
    got = asyncio.run(_requests())
    assert got["page"][0] == 200 and got["right"][0] == 200 and got["query-on-stream"][0] == 200
    for name in ("none", "wrong", "basic", "metrics", "query-on-status"):
        status, ctype, body, challenge = got[name]
        assert (status, ctype.split(";")[0], challenge) == (
            401,
            "application/problem+json",
            'Bearer realm="edream"',
        )
        assert body["status"] == 401 and body["title"] == "Unauthorized" and "bearer token" in body["detail"]
    assert got["wrong"][2]["detail"].startswith("invalid") and got["none"][2]["detail"].startswith("missing")
