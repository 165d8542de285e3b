"""One chaos run: start the platform, feed good and hostile records, apply the plan's faults, account.

The run (all times wall clock, the platform is ``edream run --no-demo`` on a fresh data dir):

1. start and wait until every stage is UP; register the chaos DSO and market participants;
2. a feeder thread sends ``good_per_s`` good readings per second for the whole run (at-least-once, resent across
   faults); each phase also sends a share of the hostile records and one minute of FLEX settlements, which the
   platform anchors on-chain (1-minute windows, 15 s grace);
3. the faults, in random order at random moments (2-8 s apart): ``kill -9`` of the platform (then a restart on the
   same data dir), ``kill -9`` of a child (the platform must revive it by itself), SIGSTOP/SIGCONT of a process;
   after each the suite waits until the platform is healthy again (status answers, every stage UP, a probe
   reading acknowledged) and records the time; after each restart every window that was anchored is verified;
4. at the end: one more hostile batch and a canary order (must be accepted: no hostile order closed its gate),
   wait until everything is stored, verify every anchored window, read the stages' health, stop the platform and
   account for every record in ClickHouse (:mod:`tools.chaos.accounting`).
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edream.paths import REPO_ROOT
from tools.chaos.accounting import KindAccount, Manifest
from tools.chaos.faults import Fault, kill9, stall
from tools.chaos.feed import Feed
from tools.chaos.inputs import KINDS, Inputs, Sent, chunks
from tools.chaos.platform import NotReady, Platform
from tools.chaos.report import ChaosReport, WindowCheck

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
GRACE_MS = 15_000


@dataclass(frozen=True)
class ChaosPlan:
    """What one run applies. ``child_kills``: child names under ``<data>/run`` (``stage-*`` = every stage
    process); ``stalls``: (target, seconds) with the same names plus ``broker``/``anvil`` aliases."""

    name: str
    random_bytes: int
    absurd: int
    wrong_contract: int
    platform_kills: int
    child_kills: tuple[str, ...]
    stalls: tuple[tuple[str, float], ...]
    good_per_s: int = 100
    settlements_per_window: int = 3
    seed: int = 14
    ready_timeout_s: float = 240.0  # also the bound of each recovery after a fault
    settle_timeout_s: float = 240.0  # for the last records to be stored, and for each window to verify VALID


FULL = ChaosPlan(
    name="full",
    random_bytes=20_000,
    absurd=20_000,
    wrong_contract=5_000,
    platform_kills=2,
    child_kills=("tansu-broker", "broker-object-store", "anvil", "stage-*"),
    stalls=(("tansu-broker", 50.0), ("anvil", 45.0), ("stage-*", 60.0)),
)
QUICK = ChaosPlan(
    name="time-boxed",
    random_bytes=2_000,
    absurd=2_000,
    wrong_contract=500,
    platform_kills=1,
    child_kills=("tansu-broker",),
    stalls=(("tansu-broker", 20.0),),
    good_per_s=50,
    # make test runs it beside the other tests: a start while five other workers start theirs took over 240 s
    ready_timeout_s=360.0,
    settle_timeout_s=120.0,
)


@dataclass
class _Run:
    plan: ChaosPlan
    platform: Platform
    feed: Feed
    inputs: Inputs
    rng: random.Random
    report: ChaosReport
    windows: set[str] = field(default_factory=set)  # anchor window ids of acknowledged settlements
    window_ends: dict[str, int] = field(default_factory=dict)
    stop_feeder: threading.Event = field(default_factory=threading.Event)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _window_id(start_ms: int) -> str:
    from streams.anchoring.windows import WindowKey

    return WindowKey("FLEX", start_ms, start_ms + MINUTE_MS).window_id


def _feeder(run: _Run) -> None:
    while not run.stop_feeder.wait(1.0):
        run.feed.add(run.inputs.good_readings(run.plan.good_per_s, _now_ms()))
        run.feed.deliver(timeout_s=0.5)


def _healthy(run: _Run, timeout: float) -> float | None:
    """Seconds until the platform is healthy (every stage UP and a probe reading acknowledged), or None."""
    t0 = time.monotonic()
    try:
        run.platform.wait_ready(stages=True, timeout=timeout)
    except NotReady as exc:
        run.report.problems.append(str(exc)[:500])
        return None
    probe = run.inputs.good_readings(1, _now_ms())
    run.feed.add(probe)
    while time.monotonic() - t0 < timeout:
        run.feed.deliver(timeout_s=2.0)
        if probe[0] in run.feed.acked:
            return round(time.monotonic() - t0, 1)
    run.report.problems.append(f"probe reading not acknowledged within {timeout:.0f} s")
    return None


def _settle_a_window(run: _Run) -> None:
    """FLEX settlements of the current minute, delivered at once (so none arrives after its window closed)."""
    start = _now_ms() // MINUTE_MS * MINUTE_MS
    if _now_ms() - start > 40_000:  # too close to the window's close: use the next one
        time.sleep((start + MINUTE_MS - _now_ms()) / 1000 + 0.5)
        start += MINUTE_MS
    records = run.inputs.good_settlements(run.plan.settlements_per_window, start, run.plan.name)
    run.feed.add(records)
    run.feed.deliver(timeout_s=15.0)
    if all(r in run.feed.acked for r in records):
        wid = _window_id(start)
        run.windows.add(wid)
        run.window_ends[wid] = start + MINUTE_MS


def _verify_windows(run: _Run, after: str, closed_before_ms: int) -> None:
    """``edream verify window`` of every window closed (end + grace + margin) before ``closed_before_ms``;
    each is retried until VALID or ``timeout`` (the anchor may still be on its way after a restart)."""
    due = sorted(w for w in run.windows if run.window_ends[w] + GRACE_MS + 20_000 < closed_before_ms)
    deadline = time.monotonic() + run.plan.settle_timeout_s
    for wid in due:
        while True:
            code, line = run.platform.verify_window("FLEX", wid)
            if code == 0 or time.monotonic() > deadline:
                break
            time.sleep(5)
        run.report.windows.append(WindowCheck(after, wid, code, line))


def _pid_of(run: _Run, target: str) -> list[tuple[str, int]]:
    children = run.platform.children()
    if target.endswith("*"):
        return [(c.name, c.pid) for c in children if c.name.startswith(target[:-1])]
    return [(c.name, c.pid) for c in children if c.name == target]


def _restart_platform(run: _Run) -> None:
    pid = run.platform.proc.pid if run.platform.proc else 0
    killed_at = _now_ms()
    run.platform.kill9()
    fault = Fault("kill9", "platform", pid)
    run.report.faults.append(fault)
    time.sleep(run.rng.uniform(1, 4))
    t0 = time.monotonic()
    run.platform.start()
    try:
        run.platform.wait_ready(stages=False, timeout=run.plan.ready_timeout_s)
        run.feed.connect(run.platform.bootstrap())
    except NotReady as exc:
        run.report.problems.append(str(exc)[:500])
        return
    rest = _healthy(run, run.plan.ready_timeout_s)
    fault.recovery_s = None if rest is None else round(time.monotonic() - t0, 1)
    log.info("chaos: platform restarted, healthy after %s s", fault.recovery_s)
    _verify_windows(run, f"restart {run.platform.starts - 1}", killed_at)


def _kill_child(run: _Run, target: str) -> None:
    for name, pid in _pid_of(run, target):
        fault = kill9(name, pid)
        run.report.faults.append(fault)
        t0 = time.monotonic()
        time.sleep(2)  # let the platform notice
        fault.recovery_s = (
            None if _healthy(run, run.plan.ready_timeout_s) is None else round(time.monotonic() - t0, 1)
        )


def _stall(run: _Run, target: str, seconds: float) -> None:
    targets = _pid_of(run, target)
    if not targets:
        run.report.problems.append(f"no process {target} to stall")
        return
    held = seconds if run.plan.name == "time-boxed" else run.rng.uniform(0.9 * seconds, seconds)
    threads, faults = [], []
    for name, pid in targets:  # several stage processes are stopped together
        t = threading.Thread(target=lambda n=name, p=pid: faults.append(stall(n, p, held)))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    t0 = time.monotonic()
    rest = _healthy(run, run.plan.ready_timeout_s)
    for f in faults:
        f.recovery_s = None if rest is None else round(time.monotonic() - t0, 1)
        run.report.faults.append(f)


def _hostile_parts(run: _Run, parts: int) -> list[list[Sent]]:
    plan, now = run.plan, _now_ms()
    garbage = (
        run.inputs.random_bytes(plan.random_bytes)
        + run.inputs.absurd_measurements(plan.absurd, now)
        + run.inputs.wrong_contract(plan.wrong_contract, REPO_ROOT / "avro")
    )
    run.rng.shuffle(garbage)
    size = max(1, -(-len(garbage) // parts))
    return list(chunks(garbage, size))


def _drain(run: _Run, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while run.feed.pending and time.monotonic() < deadline:
        run.feed.deliver(timeout_s=5.0)
    if run.feed.pending:
        run.report.problems.append(f"{len(run.feed.pending)} records never acknowledged by the broker")


def _wait_stored(run: _Run) -> None:
    """Until the status API counts at least the acknowledged good readings and settlements (FINAL counts)."""
    counts = run.feed.counts()
    want = {"measurements": counts["good_reading"], "settlement_flex": counts["good_settlement"]}
    want["market_orders_accepted"] = counts["canary_order"]
    timeout = run.plan.settle_timeout_s
    deadline, clickhouse, tables = time.monotonic() + timeout, {}, {}
    while time.monotonic() < deadline:
        status = run.platform.status()
        clickhouse = (status.get("clickhouse") or {}) if status is not None else {"detail": "no answer"}
        tables = clickhouse.get("tables") or {}
        if all(tables.get(t, 0) >= n for t, n in want.items()):
            return
        time.sleep(3)
    shown = {k: v for k, v in clickhouse.items() if k != "tables"}
    have = {t: tables.get(t) for t in want}
    log.warning(
        "not everything was stored within %.0f s (the accounting says what is missing): wanted %s, the status "
        "API counted %s; its ClickHouse status: %s",
        timeout,
        want,
        have,
        shown,
    )


def _account(run: _Run, work: Path) -> list[KindAccount]:
    manifest = Manifest({k: [r.ident for r in run.feed.acked if r.kind == k] for k in KINDS})
    path = work / "manifest.json"
    manifest.save(path)
    out = subprocess.run(
        [sys.executable, "-m", "tools.chaos.accounting", str(run.platform.data_dir), str(path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=run.platform.env,
        timeout=600,
    )
    if out.returncode != 0:
        run.report.problems.append(f"accounting failed: {out.stderr[-1500:]}")
        return []
    return [KindAccount(**a) for a in json.loads(out.stdout.strip().splitlines()[-1])]


def run_plan(plan: ChaosPlan, work_dir: Path | None = None) -> ChaosReport:
    """Apply ``plan`` to a fresh platform; the platform is stopped when this returns."""
    t_start = time.monotonic()
    work = Path(work_dir or tempfile.mkdtemp(prefix="edream-chaos-"))
    platform = Platform(
        work / "data",
        work / "platform.log",
        env={"ANCHOR_WINDOW_MINUTES": "1", "ANCHOR_GRACE_MINUTES": str(GRACE_MS / MINUTE_MS)},
    )
    run = _Run(plan, platform, Feed(), Inputs(plan.seed), random.Random(plan.seed), ChaosReport(plan.name))
    feeder = threading.Thread(target=_feeder, args=(run,), name="chaos-feeder", daemon=True)
    try:
        platform.start()
        platform.wait_ready(stages=True, timeout=plan.ready_timeout_s)
        run.feed.connect(platform.bootstrap())
        run.feed.add(run.inputs.registrations(_now_ms()))
        run.feed.deliver(timeout_s=15)
        feeder.start()
        _settle_a_window(run)

        faults = [("platform", None)] * plan.platform_kills
        faults += [("child", t) for t in plan.child_kills]
        faults += [("stall", s) for s in plan.stalls]
        run.rng.shuffle(faults)
        parts = _hostile_parts(run, len(faults) + 1)
        run.feed.add(run.inputs.hostile_orders(_now_ms()) + run.inputs.hostile_requests(_now_ms()))
        for i, (kind, what) in enumerate(faults):
            run.feed.add(parts[i])
            time.sleep(run.rng.uniform(2, 8))  # a random moment, mid-ingest
            log.info(
                "chaos: fault %d/%d: %s %s (%s)", i + 1, len(faults), kind, what or "", run.feed.counts()
            )
            if kind == "platform":
                _restart_platform(run)
            elif kind == "child":
                _kill_child(run, what)
            else:
                _stall(run, *what)
            _settle_a_window(run)
        run.feed.add(parts[-1] if len(parts) > len(faults) else [])
        run.feed.add(run.inputs.hostile_orders(_now_ms()) + run.inputs.hostile_requests(_now_ms()))
        time.sleep(5)  # hostile orders first: the canary must still find its gate open
        run.feed.add([run.inputs.canary_order(_now_ms(), nonce=1)])
        _settle_a_window(run)
        run.stop_feeder.set()
        feeder.join(30)
        log.info("chaos: faults done; draining %d pending records", len(run.feed.pending))
        _drain(run)
        _wait_stored(run)
        last_end = max(run.window_ends.values(), default=0)
        wait_s = (last_end + GRACE_MS + 25_000 - _now_ms()) / 1000
        if wait_s > 0:
            time.sleep(wait_s)
        _verify_windows(run, "the end", _now_ms())
        run.report.windows_expected = len(run.windows)
        run.report.stages_down = platform.stages_down_settled()
        if run.report.stages_down and (broker_said := platform.broker_log_tail()):
            run.report.problems.append(f"the broker's log ends with:\n{broker_said}")
    except NotReady as exc:
        run.report.problems.append(str(exc)[:1000])
    finally:
        run.stop_feeder.set()
        if feeder.is_alive():
            feeder.join(30)
        if not platform.stop():
            run.report.problems.append("edream run did not stop on Ctrl-C within 90 s")
        run.feed.close()
    run.report.accounts = _account(run, work)
    run.report.seconds = time.monotonic() - t_start
    return run.report
