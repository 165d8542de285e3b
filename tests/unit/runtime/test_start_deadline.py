"""A run that handles nothing after it started (no record, no tick, no restored changelog record) while its clock's
ticks reach the broker is hung like a loop that stopped progressing: after a consumer failure, a retry once sat
6 min before creating its topics (ci79). Restoring state is progress; between runs nothing is hung. The
supervisor's health check with a stand-in clock, no broker."""

from __future__ import annotations

import time
from types import SimpleNamespace

from edream.runtime.contract import StageSpec
from edream.runtime.engine import _progress_on_message
from edream.runtime.supervisor import StageSupervisor
from edream.settings import Settings

HANG_AFTER_S = 10.0
START_DEADLINE_S = 30.0


def _supervisor() -> StageSupervisor:
    spec = StageSpec("toy", ("in",), ("out",), lambda views: None)
    settings = Settings(runtime_hang_after_s=HANG_AFTER_S, runtime_start_deadline_s=START_DEADLINE_S)
    sup = StageSupervisor(spec, settings, "dlq", None, 1, handle_signals=False)
    sup.clock = SimpleNamespace(delivered_at=None)
    return sup


def _started_ago(sup: StageSupervisor, seconds: float) -> None:
    sup.health.run_started()
    sup.health.run_started_at -= seconds


def test_a_run_that_never_started_while_ticks_were_delivered_is_hung():
    sup = _supervisor()
    _started_ago(sup, START_DEADLINE_S + 5)
    sup.clock.delivered_at = time.monotonic()
    silent = sup._hung_for()
    assert silent is not None and silent > START_DEADLINE_S
    sup.health.hung(silent)
    assert sup.health.status == "HUNG" and "since it started" in sup.health.last_error


def test_a_start_within_the_deadline_is_not_hung_though_longer_than_a_silent_loop():
    sup = _supervisor()
    _started_ago(sup, START_DEADLINE_S - 5)
    sup.clock.delivered_at = time.monotonic()
    assert sup._hung_for() is None
    sup.health.progressed()  # a started loop that falls silent has the shorter bound
    sup.health.progress_at -= HANG_AFTER_S + 1
    assert sup._hung_for() is not None


def test_a_start_while_the_broker_took_no_tick_is_a_stall_not_a_hang():
    sup = _supervisor()
    _started_ago(sup, START_DEADLINE_S + 60)
    sup.clock.delivered_at = sup.health.run_started_at + START_DEADLINE_S - 1  # the last tick the broker took
    assert sup._hung_for() is None


def test_restoring_state_is_progress():
    sup = _supervisor()
    _started_ago(sup, START_DEADLINE_S + 60)
    sup.clock.delivered_at = time.monotonic()
    messages = iter([None, object()])  # an empty poll, then a changelog record
    poll = _progress_on_message(lambda timeout: next(messages), sup.health)
    assert poll(1) is None and sup._hung_for() is not None
    assert poll(1) is not None and sup._hung_for() is None


def test_nothing_is_hung_between_runs():
    sup = _supervisor()
    _started_ago(sup, START_DEADLINE_S + 60)
    sup.health.run_ended()
    sup.clock.delivered_at = time.monotonic()
    assert sup._hung_for() is None
