"""``edream status`` against a running platform whose web API does not answer in time (a loaded machine, a stalled
event loop): it says so, once, instead of silently leaving out the rows it could not get."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

import edream.stack as stack
from edream.cli import app
from edream.embedded.process import create_time
from edream.settings import Settings
from edream.stack import RunState


@pytest.fixture
def silent_web():
    """A port that accepts connections and never answers (a platform whose event loop is held)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


@pytest.fixture
def running_platform(tmp_path, silent_web, monkeypatch):
    """A run.json naming a live process (not this one) and the silent web port, as ``edream run`` writes it."""
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    settings = Settings(edream_data_dir=tmp_path)
    state = RunState(owner.pid, "", silent_web, f"chdb://{tmp_path}/chdb", create_time=create_time(owner.pid))
    state.save(settings)
    monkeypatch.setenv("EDREAM_DATA_DIR", str(tmp_path))
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_DSN", "ETH_RPC_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(stack, "STATUS_TIMEOUT_S", 0.5)
    yield settings
    owner.kill()
    owner.wait()


def test_the_live_status_reports_the_timeout_instead_of_raising(running_platform, silent_web):
    live = RunState.load_live(running_platform)
    answer = stack.live_status(running_platform, live)
    assert answer["error"].startswith(f"{silent_web}/api/status: "), answer
    ch = stack.check_clickhouse(running_platform, live, answer)
    assert not ch.reachable and "platform web API unreachable" in ch.detail, ch


def test_edream_status_says_the_platform_did_not_answer(running_platform, silent_web):
    out = CliRunner().invoke(app, ["status"]).stdout
    assert "platform    running" in out, out
    assert f"live status unavailable ({silent_web}/api/status: " in out, out
    assert "clickhouse  DOWN" in out, out
    assert "table " not in out, out
