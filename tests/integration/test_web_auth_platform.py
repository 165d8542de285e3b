"""`edream run` bound outside loopback: refused without a token; with one, /api/* and /metrics need it (real
HTTP client against the running platform) and `edream status` sends it from the same environment."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest
from platform_process import get_when_up, platform_env, start_platform, stop_platform, wait_status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "integration-" + uuid.uuid4().hex


def test_outside_loopback_needs_a_token(tmp_path, kafka_bootstrap, renamed_topology):
    suffix = uuid.uuid4().hex[:8]
    topology, _ = renamed_topology(suffix)
    env, port = platform_env(tmp_path / "data", kafka_bootstrap, topology, f"edream-test-{suffix}")
    env = {k: v for k, v in env.items() if not k.startswith("EDREAM_API_TOKEN")} | {
        "EDREAM_WEB_HOST": "0.0.0.0"
    }

    t0 = time.monotonic()
    refused = subprocess.run(
        [sys.executable, "-m", "edream.cli", "run", "--no-demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "EDREAM_WEB_HOST=0.0.0.0 is not a loopback address: set EDREAM_API_TOKEN" in refused.stderr
    assert time.monotonic() - t0 < 30 and not (tmp_path / "data" / "run.json").exists()

    proc = start_platform(env | {"EDREAM_API_TOKEN": TOKEN}, "--no-demo")
    base = f"http://127.0.0.1:{port}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    try:
        wait_status(port, lambda s: "tables" in s["clickhouse"], headers=bearer)
        for path in ("/api/status", "/api/dashboard", "/api/panels", "/metrics"):
            r = httpx.get(base + path, timeout=10)
            assert r.status_code == 401, path
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["www-authenticate"] == 'Bearer realm="edream"'
            assert r.json()["status"] == 401 and r.json()["detail"].startswith("missing bearer token")
            wrong = httpx.get(base + path, headers={"Authorization": "Bearer " + TOKEN[::-1]}, timeout=10)
            assert wrong.status_code == 401 and wrong.json()["detail"].startswith("invalid bearer token")
            assert httpx.get(base + path, headers=bearer, timeout=10).status_code == 200, path
        assert httpx.get(base + "/", timeout=10).status_code == 200  # the page itself holds no data
        # the integrators' REST API on its own port takes the same token
        rest = f"http://127.0.0.1:{env['EDREAM_REST_PORT']}/api/v1/flex/orders"
        refused = get_when_up(rest)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer realm="edream"'
        assert refused.headers["content-type"] == "application/problem+json", refused.text
        assert httpx.get(rest, headers=bearer, timeout=10).json()["count"] == 0
        with httpx.stream("GET", f"{base}/api/stream?access_token={TOKEN}", timeout=10) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith(
                "text/event-stream"
            )

        status = subprocess.run(
            [sys.executable, "-m", "edream.cli", "status", "--json"],
            env=env | {"EDREAM_API_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=60,
        )
        live = json.loads(status.stdout)["platform"]["live"]
        assert "clickhouse" in live and "error" not in live, live
    finally:
        stop_platform(proc)
