"""A run whose consumer failed must stop within STOP_DEADLINE_S; a stop that hangs (a broker call that never returns,
seen under a failing embedded broker) is reported HUNG and the process exits through ``on_hang`` so its worker
restarts it. A run that failed recently is left to stop. The supervisor's health loop, no broker."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from edream.runtime import supervisor as sup_mod
from edream.runtime.contract import StageSpec
from edream.runtime.supervisor import StageSupervisor
from edream.settings import Settings


def _supervisor(failed_s_ago: float, hung: threading.Event) -> StageSupervisor:
    spec = StageSpec("toy", ("in",), ("out",), lambda views: None)
    sup = StageSupervisor(spec, Settings(), "dlq", None, 1, handle_signals=False, on_hang=hung.set)
    sup.current = SimpleNamespace(failed_at=time.monotonic() - failed_s_ago, lag=lambda: None)
    return sup


def _watch(sup: StageSupervisor, hung: threading.Event, seconds: float) -> bool:
    t = threading.Thread(target=sup._report, daemon=True)
    t.start()
    called = hung.wait(seconds)
    sup.stop_event.set()
    t.join(5)
    return called


def test_a_stop_hanging_past_the_deadline_is_reported_and_exits():
    hung = threading.Event()
    sup = _supervisor(sup_mod.STOP_DEADLINE_S + 1, hung)
    assert _watch(sup, hung, 3 * sup_mod.CHECK_EVERY_S)
    assert sup.health.status == "HUNG" and "has not stopped" in sup.health.last_error


def test_a_run_that_failed_just_now_is_left_to_stop():
    hung = threading.Event()
    sup = _supervisor(1.0, hung)
    assert not _watch(sup, hung, 1.5 * sup_mod.CHECK_EVERY_S)
    assert sup.health.status != "HUNG"
