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
