"""A child process the platform owns: start, wait until a TCP port answers, stop (TERM, then KILL).

Children die with their parent: each runs in its own process group (so Ctrl-C in the terminal reaches only
``edream run``, which stops them in order) with the Linux parent-death signal set to SIGKILL, so a
``kill -9`` of ``edream run`` takes every child with it. Each child also leaves a record in its state dir
(``<data dir>/run/<name>.json``: pid, create time, owner pid and create time); :func:`reap_orphans` kills the
process groups of children whose owner is gone (a child that outlived its parent, e.g. started from a thread
that ended) before a new run starts on the same data dir.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from edream.embedded.watchdog import Watched

log = logging.getLogger(__name__)
T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# resolved in the parent: a forked child of a threaded process must not load libraries
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def file_tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of the text file ``path``, or "" if it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent(parent_pid: int) -> Callable[[], None]:
    """A ``preexec_fn``: SIGKILL this child when the thread that forked it dies (Linux only).

    The kernel sends the signal when the *forking thread* ends, so children must be started from a thread that
    lives as long as the parent (``edream run`` starts them from its main thread)."""

    def preexec() -> None:
        if _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(126)

    return preexec


#: niceness step of the embedded broker and its object store: above the platform's own processes where the OS allows
#: it (root or CAP_SYS_NICE), so a CPU-starved machine slows the stages down instead of timing out the broker's
#: writes (seen under load 23 on 2 cores: SeaweedFS PUTs failing, produce requests timing out after 60 s, and a
#: stage's consumer failing with them)
INFRA_NICE = -5


def _preexec(parent_pid: int, nice: int) -> Callable[[], None]:
    """:func:`die_with_parent`, then ``os.nice(nice)`` (kept at the parent's priority if not permitted)."""
    base = die_with_parent(parent_pid)

    def preexec() -> None:
        base()
        if nice:
            with contextlib.suppress(OSError):
                os.nice(nice)

    return preexec


def create_time(pid: int) -> float | None:
    """Start time of ``pid`` (seconds since the epoch, as psutil reports it), or None if there is no such pid."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def same_process(pid: int, started: float) -> bool:
    """True if ``pid`` is alive and is the process that started at ``started`` (not a later reuse of the pid)."""
    actual = create_time(pid)
    return actual is not None and abs(actual - started) < 0.05


class ChildExited(RuntimeError):
    """A child exited while starting (see its log tail in the message): a port taken between choosing and
    binding it, a bad argument, a damaged data dir."""


def start_on_fresh_ports(make: Callable[[], T], start: Callable[[T], object], attempts: int = 3) -> T:
    """``make()`` a child (which chooses free ports) and ``start`` it; if it exits while starting, log why and try
    again with a new one, up to ``attempts`` times. Ports come from :func:`free_port`, and another process can bind
    one between its choice and the child's ``bind`` (seen once in CI: the object store exited with 255 on a
    restart); a child that fails for another reason fails every attempt with the same message."""
    for attempt in range(1, attempts + 1):
        child = make()
        try:
            start(child)
            return child
        except ChildExited as exc:
            if attempt == attempts:
                raise
            log.warning("attempt %d of %d failed, trying new ports: %s", attempt, attempts, exc)
    raise AssertionError("unreachable")


@dataclass
class ChildRecord:
    """What ``<state dir>/<name>.json`` says about a running child (times: psutil create times, epoch s)."""

    name: str
    pid: int
    create_time: float
    owner_pid: int
    owner_create_time: float
    argv: list[str]

    @property
    def orphaned(self) -> bool:
        """The child still runs but the process that started it is gone."""
        return same_process(self.pid, self.create_time) and not same_process(
            self.owner_pid, self.owner_create_time
        )


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def kill_group(pid: int, grace: float = 5.0) -> None:
    """TERM the process group led by ``pid``, then KILL it if its leader still runs after ``grace`` seconds."""
    kill_groups([pid], grace)


def kill_groups(pids: list[int], grace: float = 5.0) -> None:
    """TERM the process groups led by ``pids`` all at once, then KILL those whose leader still runs after
    ``grace`` seconds: stopping N children takes the slowest one's time, not the sum."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        signalled = []
        for pid in pids:
            try:
                os.killpg(pid, sig)
                signalled.append(psutil.Process(pid))
            except (ProcessLookupError, psutil.NoSuchProcess):
                continue
        _, alive = psutil.wait_procs(signalled, timeout=wait)
        pids = [p.pid for p in alive]
        if not pids:
            return


def reap_orphans(state_dir: Path) -> list[ChildRecord]:
    """Stop the children a dead run left behind (their process groups) and drop their records.

    Records of children that exited, or whose owner is still alive, are removed resp. left alone. Returns the
    children that were stopped."""
    reaped = []
    for path in sorted(Path(state_dir).glob("*.json")):
        try:
            rec = ChildRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if rec.orphaned:
            log.warning(
                "stopping %s (pid %d) left by a previous run (pid %d)", rec.name, rec.pid, rec.owner_pid
            )
            kill_group(rec.pid)
            reaped.append(rec)
        if not same_process(rec.pid, rec.create_time) or rec in reaped:
            path.unlink(missing_ok=True)
    return reaped


class ChildProcess:
    """Runs ``argv`` with output to ``log_path``; ``stop()`` is idempotent and never leaves an orphan.

    ``state_dir``: where the child's :class:`ChildRecord` is kept while it runs (see :func:`reap_orphans`).
    ``pass_fds``: file descriptors the child inherits (e.g. a lock it must hold for its whole life). ``nice``: added
    to the child's niceness (negative: higher priority, only where permitted, e.g. :data:`INFRA_NICE`)."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        host: str,
        port: int,
        log_path: Path,
        env: dict[str, str] | None = None,
        state_dir: Path | None = None,
        pass_fds: tuple[int, ...] = (),
        nice: int = 0,
    ):
        self.name, self.argv, self.host, self.port, self.log_path = name, argv, host, port, log_path
        self.env = env
        self.state_dir = state_dir
        self.pass_fds, self.nice = pass_fds, nice
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def record_path(self) -> Path | None:
        return self.state_dir / f"{_slug(self.name)}.json" if self.state_dir else None

    def start(self, ready_timeout: float = 20.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals the whole group
                preexec_fn=_preexec(os.getpid(), self.nice),
                env=self.env,
                pass_fds=self.pass_fds,
            )
        self._write_record()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._drop_record()
                raise ChildExited(
                    f"{self.name} exited with {self.proc.returncode}; see {self.log_path}:\n{self.log_tail()}"
                )
            if port_open(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen on {self.host}:{self.port} in {ready_timeout}s")

    def log_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the child's log (why it exited), or "" if there is none."""
        return file_tail(self.log_path, lines)

    def _write_record(self) -> None:
        if not (self.record_path and self.proc):
            return
        me = psutil.Process()
        rec = ChildRecord(
            self.name,
            self.proc.pid,
            create_time(self.proc.pid) or time.time(),
            me.pid,
            me.create_time(),
            self.argv,
        )
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self.record_path.write_text(json.dumps(asdict(rec)) + "\n")

    def _drop_record(self) -> None:
        if self.record_path:
            self.record_path.unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            kill_group(self.proc.pid, grace)
            self.proc.wait(5)
        self._drop_record()


def holders(ports: list[int], names: dict[int, str] | None = None) -> list[str]:
    """``"<name> <port> (pid <pid>: <command line>)"`` for each listening port (the pid is unknown without
    permission); ``names``: port -> what it is for."""
    names = names or {}
    out = []
    for port in ports:
        who = "unknown process"
        try:
            for c in psutil.net_connections(kind="tcp"):
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                    who = f"pid {c.pid}: {' '.join(psutil.Process(c.pid).cmdline())[:200]}"
                    break
        except (psutil.Error, OSError):
            pass
        out.append(f"{names.get(port, '')} {port} ({who})")
    return out


class ChildGroup:
    """Children started in order once their ``ports`` are free, stopped in reverse order."""

    def __init__(self, name: str, children: list[ChildProcess], ports: list[int], stop_grace: float = 10.0):
        self.name, self.children, self.ports, self.stop_grace = name, children, ports, stop_grace

    def start(self) -> bool:
        """Start every child; False (logged, with who holds them) when a port is taken."""
        busy = [p for p in self.ports if port_open("127.0.0.1", p)]
        if busy:
            log.warning("%s not started: port(s) in use: %s", self.name, ", ".join(holders(busy)))
            return False
        try:
            for child in self.children:
                child.start(ready_timeout=60)
        except RuntimeError:
            self.stop()
            raise
        return True

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop(grace=self.stop_grace)

    def describe(self) -> str:
        return ", ".join(f"{c.name} pid {c.proc.pid}" for c in self.children if c.proc)

    def watched(self) -> list[Watched]:
        """The started children for a :class:`~edream.embedded.watchdog.ChildWatchdog`: one that exits (killed,
        crashed) is started again on its port."""
        return [
            Watched(child.name, lambda c=child: c.running, lambda c=child: c.start(ready_timeout=60))
            for child in self.children
            if child.proc is not None
        ]
