"""Crash leftovers: stale run.json, orphaned children, a damaged anvil state file (real processes and files)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import asdict

import psutil
import pytest

from edream.embedded.anvil import keep_good_state
from edream.embedded.broker import EmbeddedBroker
from edream.embedded.object_store import remove_stale_sockets
from edream.embedded.process import (
    ChildExited,
    ChildProcess,
    ChildRecord,
    create_time,
    reap_orphans,
    start_on_fresh_ports,
)
from edream.settings import Settings
from edream.stack import RunState


def _exited_process() -> tuple[int, float]:
    """(pid, start time) of a process that has exited: the owner of a killed run."""
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    started = create_time(p.pid)
    p.wait()
    return p.pid, started


def _state(pid: int, started: float | None) -> RunState:
    return RunState(pid, "127.0.0.1:1", "http://127.0.0.1:2", "chdb", create_time=started)


def test_run_state_is_live_only_for_the_same_process_that_wrote_it(tmp_path):
    settings = Settings(edream_data_dir=tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _state(other.pid, create_time(other.pid)).save(settings)
        assert RunState.load_live(settings).pid == other.pid
        _state(other.pid, create_time(other.pid) - 100).save(settings)  # same pid, another process
        assert RunState.load_live(settings) is None
    finally:
        other.kill()
        other.wait()
    assert RunState.load_live(settings) is None  # gone
    _state(1, create_time(1) - 100).save(settings)  # pid 1 exists (in a container: a previous run's pid)
    assert RunState.load_live(settings) is None
    RunState.of_this_process(bootstrap="b", web_url="w", clickhouse_dsn="c").save(settings)
    assert RunState.load_live(settings) is None  # our own pid is never "another running platform"
    (tmp_path / "run.json").write_text(
        json.dumps({"pid": 1, "bootstrap": "b", "web_url": "w", "clickhouse_dsn": "c"})
    )
    assert RunState.load_live(settings) is None  # a file from before start times were recorded


def test_reap_orphans_stops_children_whose_owner_is_gone_and_spares_the_others(tmp_path):
    dead_owner, dead_started = _exited_process()
    me = psutil.Process()
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    kept = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        records = {
            "orphan": ChildRecord(
                "orphan", orphan.pid, create_time(orphan.pid), dead_owner, dead_started, []
            ),
            "kept": ChildRecord("kept", kept.pid, create_time(kept.pid), me.pid, me.create_time(), []),
            "exited": ChildRecord("exited", dead_owner, dead_started, dead_owner, dead_started, []),
        }
        for name, rec in records.items():
            (tmp_path / f"{name}.json").write_text(json.dumps(asdict(rec)))
        (tmp_path / "garbage.json").write_text("{not json")

        reaped = reap_orphans(tmp_path)

        assert [r.name for r in reaped] == ["orphan"]
        assert orphan.wait(5) is not None
        time.sleep(0.1)
        assert kept.poll() is None
        assert sorted(p.name for p in tmp_path.glob("*.json")) == ["kept.json"]
    finally:
        for p in (orphan, kept):
            p.kill()
            p.wait()


def test_a_damaged_chain_state_is_replaced_by_the_last_good_one(tmp_path):
    state = tmp_path / "state.json"
    state.write_text('{"best_block_number": 7}')
    keep_good_state(state)  # a good state is remembered
    state.write_text('{"best_block_number": 9, "blo')  # killed while anvil rewrote it
    keep_good_state(state)
    assert json.loads(state.read_text()) == {"best_block_number": 7}


def test_a_damaged_chain_state_without_a_good_copy_is_set_aside(tmp_path):
    state = tmp_path / "state.json"
    state.write_text("{trunc")
    keep_good_state(state)
    assert not state.exists() and (tmp_path / "state.json.damaged").read_text() == "{trunc"


def test_the_embedded_infrastructure_runs_above_the_platform_where_permitted(tmp_path):
    import os

    from edream.embedded.process import INFRA_NICE, ChildProcess, free_port

    port = free_port()
    serve = (
        f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); time.sleep(60)"
    )
    child = ChildProcess(
        "niced", [sys.executable, "-c", serve], "127.0.0.1", port, tmp_path / "n.log", nice=INFRA_NICE
    )
    child.start()
    try:
        mine = os.nice(0)
        want = (
            mine + INFRA_NICE if os.geteuid() == 0 else mine
        )  # not permitted: the parent's priority, no error
        assert psutil.Process(child.proc.pid).nice() == max(want, -20)
    finally:
        child.stop()


def test_a_child_that_exits_on_a_taken_port_starts_again_on_a_new_one(tmp_path):
    with socket.socket() as taken:  # bound, not listening: the child's bind fails and nothing answers
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        ports = iter([port, None])
        made: list[EmbeddedBroker] = []

        def make() -> EmbeddedBroker:
            made.append(EmbeddedBroker(tmp_path, port=next(ports)))
            return made[-1]

        broker = start_on_fresh_ports(make, EmbeddedBroker.start)
        try:
            assert (
                len(made) == 2 and made[0].proc.returncode is not None
            )  # Tansu exits with 0 after its panic
            assert broker is made[1] and broker.running and broker.port != port
        finally:
            broker.stop()


def test_a_child_that_cannot_start_fails_after_its_attempts_with_its_log(tmp_path):
    log = tmp_path / "child.log"

    def make() -> ChildProcess:
        return ChildProcess(
            "doomed", [sys.executable, "-c", "print('bad flag'); exit(3)"], "127.0.0.1", 1, log
        )

    with pytest.raises(ChildExited, match="doomed exited with 3(.|\n)*bad flag"):
        start_on_fresh_ports(make, ChildProcess.start, attempts=2)
    assert log.read_text().count("bad flag") == 2


def test_weed_sockets_nobody_listens_on_are_removed_and_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    stale, live = tmp_path / "seaweedfs-master-grpc-1.sock", tmp_path / "seaweedfs-filer-2.sock"
    with socket.socket(socket.AF_UNIX) as s:  # a killed weed's socket: the file stays, nobody listens
        s.bind(str(stale))
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(live))
        s.listen()
        assert remove_stale_sockets() == 1
    assert not stale.exists() and live.exists()
