"""Run `edream run` as a user does (a subprocess), wait on its status API, stop it with Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from edream.embedded.process import free_port


def platform_env(data_dir, bootstrap: str, topology, app_id: str) -> tuple[dict[str, str], int]:
    """Environment for `edream run` on the session broker with its own data dir, topology (unique topic names),
    consumer-group prefix and a free web port; returns (env, port)."""
    port = free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        EDREAM_DATA_DIR=str(data_dir),
        EDREAM_WEB_PORT=str(port),
        EDREAM_REST_PORT=str(free_port()),
        EDREAM_TOPOLOGY=str(topology),
        EDREAM_APP_ID=app_id,
    )
    return env, port


def start_platform(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "edream.cli", "run", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_status(port: int, pred, timeout: float = 150.0, headers: dict[str, str] | None = None) -> dict:
    """Poll /api/status (with ``headers``, e.g. the bearer token) until ``pred(status)``; fail with the last
    status seen."""
    deadline, last, error = time.monotonic() + timeout, None, None
    while time.monotonic() < deadline:
        try:  # a loaded machine (make test runs 5 heavy tests at once) can take seconds to answer
            last = httpx.get(f"http://127.0.0.1:{port}/api/status", headers=headers, timeout=15).json()
            if pred(last):
                return last
        except (httpx.HTTPError, ValueError) as e:
            error = f"{type(e).__name__}: {e}"
        time.sleep(0.5)
    raise AssertionError(f"status never satisfied the condition; last: {last}; last error: {error}")


def get_when_up(url: str, timeout: float = 60, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET ``url`` once its server accepts connections (the worker starts its REST service after its status
    page)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, headers=headers, timeout=10)
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop_platform(proc: subprocess.Popen) -> str:
    """SIGINT (Ctrl-C) and return the output; fail (after killing it) if it does not stop in 60 s."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        steps = [line[:400] for line in out.splitlines() if _SHUTDOWN.search(line)]
        raise AssertionError(
            "edream run did not stop on Ctrl-C; its shutdown steps and first errors:\n"
            + "\n".join(steps[:40])
            + f"\n--- its last output:\n{out[-3000:]}"
        ) from None
    return out


#: What shows where a shutdown hung: its steps, fatal and error lines, tracebacks.
_SHUTDOWN = re.compile(r'stopping|stopped|fatal|"level": "(error|critical)"|Traceback', re.IGNORECASE)


#: A warning or error in `edream run`'s output: JSON log records, librdkafka's own lines (%0-%4), tracebacks.
_NOISY = re.compile(r'"level": "(warning|error|critical)"|Traceback|Connection refused|^%[0-4]\|')


def noisy_lines_after_stopping(out: str) -> list[str]:
    """Warning and error lines printed after the platform began stopping (the first "Stopping..." log line)."""
    at = out.find("Stopping...")
    return [line for line in out[at if at >= 0 else 0 :].splitlines() if _NOISY.search(line)]
