"""The watchdog of the embedded children: a dead child is started again, in order, with backoff on failure."""

from __future__ import annotations

import time

from edream.embedded.watchdog import ChildWatchdog, Watched


class FakeChild:
    def __init__(self, fail_starts: int = 0):
        self.alive, self.starts, self.fail_starts = True, 0, fail_starts

    def start(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("port in use")
        self.starts += 1
        self.alive = True


def _wait(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pred():
        time.sleep(0.02)
    return pred()


def test_a_dead_child_is_started_again_and_a_live_one_is_left_alone():
    store, broker = FakeChild(), FakeChild()
    dog = ChildWatchdog(
        [
            Watched("store", lambda: store.alive, store.start),
            Watched("broker", lambda: broker.alive, broker.start),
        ],
        period_s=0.05,
    ).start()
    try:
        broker.alive = False
        assert _wait(lambda: broker.alive)
        assert (store.starts, broker.starts) == (0, 1)
        assert dog.restarts() == {"store": 0, "broker": 1}
    finally:
        dog.stop()


def test_a_failing_restart_is_retried_and_no_restart_after_stop():
    child = FakeChild(fail_starts=1)
    dog = ChildWatchdog([Watched("anvil", lambda: child.alive, child.start)], period_s=0.05).start()
    child.alive = False
    assert _wait(lambda: child.alive, timeout=5.0)  # first try failed, the next one (after 1 s) worked
    dog.stop()
    child.alive = False
    time.sleep(0.3)
    assert not child.alive and child.starts == 1


def test_a_killed_child_of_a_group_is_started_again_on_its_port(tmp_path):
    """A demo counterpart (here a tiny HTTP server) killed with SIGKILL is back on its port (edream run watches the
    field site's and the demo counterparts' children this way)."""
    import os
    import signal
    import sys

    from edream.embedded.process import ChildGroup, ChildProcess, free_port, port_open

    port = free_port()
    child = ChildProcess(
        "tiny server",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        "127.0.0.1",
        port,
        tmp_path / "tiny.log",
    )
    group = ChildGroup("tiny site", [child], [port])
    assert group.start()
    dog = ChildWatchdog(group.watched(), period_s=0.05).start()
    try:
        first = child.proc.pid
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: child.proc.pid != first and port_open("127.0.0.1", port), timeout=20)
    finally:
        dog.stop()
        group.stop()
    assert not child.running
