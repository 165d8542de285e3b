"""A stage process that exits or is stopped is reported DOWN at once by its worker, with the reason; a restarted
process on the same host replaces the exited one's record. Real child processes (``sleep``), no broker."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from edream.runtime import workers
from edream.runtime.health import STALE_AFTER_MS, effective_status, process_down_record
from edream.runtime.health_board import without_replaced
from edream.runtime.workers import StageProcesses, exit_text


def test_process_down_records_show_as_down_with_their_reason():
    rec = process_down_record("intervals", "h:12", "EXITED", "process 12 killed by SIGKILL", at_ms=1_000)
    assert (
        effective_status(rec, at_ms=1_000) == "DOWN" and rec["last_error"] == "process 12 killed by SIGKILL"
    )
    assert effective_status({**rec, "status": "UP"}, at_ms=1_000 + STALE_AFTER_MS) == "UP"
    assert effective_status({**rec, "status": "UP"}, at_ms=1_001 + STALE_AFTER_MS) == "DOWN"
    with pytest.raises(ValueError, match="EXITED"):
        process_down_record("intervals", "h:12", "UP", "x", at_ms=1)


def test_exit_text_names_the_signal():
    assert exit_text(7, -9) == "process 7 killed by SIGKILL"
    assert exit_text(7, 3) == "process 7 exited with code 3"


def _row(worker: str, reported: str, status: str, at: int) -> dict:
    return {
        "stage": "intervals",
        "worker_id": worker,
        "reported_status": reported,
        "status": status,
        "updated_at": at,
    }


def test_an_exited_record_is_kept_until_the_restarted_process_on_its_host_reports_up():
    dead = _row("h:1", "EXITED", "DOWN", 100)
    assert without_replaced([dead, _row("h:2", "STARTING", "STARTING", 200)]) == [
        dead,
        _row("h:2", "STARTING", "STARTING", 200),
    ]
    assert without_replaced([dead, _row("h:2", "UP", "UP", 200)]) == [_row("h:2", "UP", "UP", 200)]
    other_host = _row("g:2", "UP", "UP", 200)
    assert dead in without_replaced([dead, other_host])
    stale = _row("h:3", "UP", "DOWN", 50)  # a hung process (no EXITED record) stays DOWN
    assert stale in without_replaced([stale, _row("h:2", "UP", "UP", 200)])


@pytest.fixture
def sleeping_stages(monkeypatch, tmp_path):
    """StageProcesses whose children are ``sleep 60`` processes; yields (processes, reports)."""
    monkeypatch.setattr(
        workers, "stage_argv", lambda name: [sys.executable, "-c", "import time; time.sleep(60)"]
    )
    reports: list[tuple[str, int, str, str]] = []
    seen = threading.Event()

    def on_down(*report):
        reports.append(report)
        seen.set()

    procs = StageProcesses(["intervals"], tmp_path / "logs", tmp_path / "run", on_down=on_down).start()
    yield procs, reports, seen
    procs.stop(grace=1)


def test_a_killed_stage_process_is_reported_exited_at_once_and_restarted(sleeping_stages):
    procs, reports, seen = sleeping_stages
    pid = procs.children["intervals"].proc.pid
    os.kill(pid, signal.SIGKILL)
    assert seen.wait(5)
    assert reports == [("intervals", pid, "EXITED", f"process {pid} killed by SIGKILL; restarting in 1 s")]
    deadline = time.monotonic() + 10
    while procs.children["intervals"].proc.pid == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs.children["intervals"].proc.pid != pid and procs.alive() == {"intervals": True}


def test_a_stopped_stage_process_is_reported_suspended_once(sleeping_stages):
    procs, reports, seen = sleeping_stages
    pid = procs.children["intervals"].proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        assert seen.wait(5)
        time.sleep(1.2)  # two more watch rounds: no second report for the same stop
    finally:
        os.kill(pid, signal.SIGCONT)
    assert [r[2] for r in reports] == ["SUSPENDED"] and reports[0][1] == pid
