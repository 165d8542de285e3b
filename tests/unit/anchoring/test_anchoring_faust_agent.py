from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from streams.anchoring.faust_agent import SerialClient, run_loop


class RecordingClient:
    name = "fake"

    def __init__(self):
        self.threads: list[str] = []

    def query(self, sql: str) -> str:
        self.threads.append(threading.current_thread().name)
        return sql.upper()


def test_serial_client_runs_calls_on_the_executor_thread():
    inner = RecordingClient()
    with ThreadPoolExecutor(1, "clickhouse") as ex:
        proxy = SerialClient(inner, ex)
        assert proxy.query("select 1") == "SELECT 1" and proxy.name == "fake"
    assert inner.threads and all(t.startswith("clickhouse") for t in inner.threads)


class StepAgent:
    def __init__(self, stop: threading.Event, steps_before_stop: int):
        self.stop, self.left, self.closed, self.steps = stop, steps_before_stop, False, 0

    def step(self, timeout_s: float) -> list:
        self.steps += 1
        self.left -= 1
        if self.left == 0:
            self.stop.set()
        return []

    def close(self) -> None:
        self.closed = True


def test_run_loop_retries_build_then_steps_until_stopped():
    stop = threading.Event()
    attempts: list[int] = []
    agent = StepAgent(stop, 3)

    def build():
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("chain not up")
        return agent

    run_loop(build, stop, retry_s=0.0)
    assert len(attempts) == 3 and agent.steps == 3 and agent.closed
