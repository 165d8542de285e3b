"""Stage processes of a worker: one child process per stage (``edream stage run NAME``), kept alive.

Each stage runs in a process of its own, so stages use both cores instead of sharing one interpreter lock, and a
stage that crashes its interpreter takes nothing else with it. :class:`StageProcesses` starts them, restarts a
child that exited (with backoff, logged), and stops them all (TERM to each process group, then KILL). Children
die with the worker (parent-death signal) and are recorded under ``<data dir>/run`` so a restarted platform
reaps what a killed one left (:func:`edream.embedded.process.reap_orphans`). A child that exits or is stopped by
a signal (SIGSTOP) is reported at once through ``on_down(stage, pid, status, reason)`` (the platform publishes it
as the stage's health: red on the console within seconds, not after the staleness limit).

Scale-out: every worker process (``edream worker`` on other machines or containers) that runs a stage joins the
stage's consumer group, so its partitions are shared among them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from edream.embedded.process import ChildRecord, create_time, die_with_parent, kill_groups
from edream.retry import Delays

log = logging.getLogger(__name__)

#: backoff between restarts of a child that keeps exiting, in seconds
RESTART_MIN_S, RESTART_MAX_S = 1.0, 30.0
#: ``on_down(stage, pid, status, reason)``: status EXITED or SUSPENDED (see :mod:`edream.runtime.health`)
OnDown = Callable[[str, int, str, str], None]


def exit_text(pid: int, code: int) -> str:
    """``process 12 killed by SIGKILL`` / ``process 12 exited with code 1``."""
    if code < 0:
        try:
            return f"process {pid} killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"process {pid} killed by signal {-code}"
    return f"process {pid} exited with code {code}"


def stage_argv(name: str) -> list[str]:
    return [sys.executable, "-c", "from edream.cli import main; main()", "stage", "run", name]


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    delays: Delays = field(default_factory=lambda: Delays(RESTART_MIN_S, RESTART_MAX_S, jitter=False))
    started_at: float = field(default_factory=time.monotonic)
    suspended: bool = False


class StageProcesses:
    def __init__(
        self,
        stages: list[str],
        log_dir: Path,
        run_dir: Path,
        env: dict[str, str] | None = None,
        on_down: OnDown | None = None,
    ):
        self.log_dir, self.run_dir, self.on_down = log_dir, run_dir, on_down
        self.env = {**os.environ, **(env or {})}
        self.children = {name: _Child(name) for name in stages}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="stage-processes", daemon=True)

    def start(self) -> StageProcesses:
        for child in self.children.values():
            self._spawn(child)
        self._monitor.start()
        return self

    def _spawn(self, child: _Child) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"stage-{child.name}.log", "ab") as out:
            child.proc = subprocess.Popen(
                stage_argv(child.name),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(os.getpid()),
                env=self.env,
            )
        child.started_at = time.monotonic()
        self._record(child)
        log.info("stage %s started (pid %d)", child.name, child.proc.pid)

    def _record(self, child: _Child) -> None:
        import json
        from dataclasses import asdict

        import psutil

        me = psutil.Process()
        pid = child.proc.pid if child.proc else 0
        rec = ChildRecord(
            f"stage-{child.name}", pid, create_time(pid) or time.time(), me.pid, me.create_time(), []
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / f"stage-{child.name}.json").write_text(json.dumps(asdict(rec)) + "\n")

    def _report(self, child: _Child, status: str, reason: str) -> None:
        if self.on_down is not None and child.proc is not None:
            try:
                self.on_down(child.name, child.proc.pid, status, reason)
            except Exception as exc:  # noqa: BLE001 - the restart must not depend on the report
                log.warning("stage %s: %s not reported: %s", child.name, status, exc)

    def _suspended(self, child: _Child) -> None:
        """Report a child stopped by a signal once per stop (it reports UP itself when continued)."""
        try:
            stopped = psutil.Process(child.proc.pid).status() == psutil.STATUS_STOPPED
        except psutil.Error:
            return
        if stopped and not child.suspended:
            log.error("stage %s (pid %d) is stopped by a signal", child.name, child.proc.pid)
            self._report(child, "SUSPENDED", f"process {child.proc.pid} stopped by a signal (SIGSTOP?)")
        child.suspended = stopped

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for child in self.children.values():
                with self._lock:
                    if self._stop.is_set() or child.proc is None:
                        continue
                    if child.proc.poll() is None:
                        self._suspended(child)
                        continue
                    code = child.proc.returncode
                    if time.monotonic() - child.started_at > 60:
                        child.delays.reset()  # it ran a while: a fresh failure
                    wait = child.delays.next()
                    log.error(
                        "stage %s exited with %s; restarting in %.0fs (see %s)",
                        child.name,
                        code,
                        wait,
                        self.log_dir / f"stage-{child.name}.log",
                    )
                    self._report(
                        child, "EXITED", f"{exit_text(child.proc.pid, code)}; restarting in {wait:.0f} s"
                    )
                if self._stop.wait(wait):
                    return
                with self._lock:
                    if not self._stop.is_set():
                        child.restarts += 1
                        self._spawn(child)

    def alive(self) -> dict[str, bool]:
        return {n: c.proc is not None and c.proc.poll() is None for n, c in self.children.items()}

    def stop(self, grace: float = 10.0) -> None:
        self._stop.set()
        with self._lock:
            running = [
                c.proc.pid for c in self.children.values() if c.proc is not None and c.proc.poll() is None
            ]
            kill_groups(running, grace)
            for child in self.children.values():
                (self.run_dir / f"stage-{child.name}.json").unlink(missing_ok=True)
        if self._monitor.is_alive():
            self._monitor.join(2)
