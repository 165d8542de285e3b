"""The e2e benchmark's CPU figures: per-process CPU over the load window, gone processes left out, and the machine
reference that says whether two runs are comparable."""

from __future__ import annotations

import os

from tools.bench.e2e import cpu_pct, cpu_seconds, python_reference_ms


def test_cpu_over_a_window_is_a_share_of_one_core_for_processes_seen_at_both_ends():
    before = {"broker": 10.0, "w0:intervals": 100.0, "restarted": 5.0}
    after = {"broker": 13.0, "w0:intervals": 130.0, "new": 1.0}
    assert cpu_pct(before, after, 60.0) == {"broker": 5.0, "w0:intervals": 50.0}


def test_cpu_seconds_of_live_processes_only():
    gone = 2**22 + 12_345  # above the largest pid Linux allows (2**22)
    used = cpu_seconds({"me": os.getpid(), "gone": gone})
    assert set(used) == {"me"} and used["me"] > 0


def test_python_reference_is_a_positive_duration_in_ms():
    ms = python_reference_ms()
    assert 0 < ms < 60_000
