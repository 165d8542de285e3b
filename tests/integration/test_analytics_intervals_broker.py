"""The interval stage on the runtime over the real embedded broker: the records of the processor (per partition,
out-of-order readings corrected with higher versions), dead letters with their codes, a silent meter's window
closed by the wall-clock ticks, and two workers in one group producing the same ids and values as one."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
from interval_stage_child import CFG
from interval_support import (
    MIN,
    SERDE,
    Reference,
    collect,
    encoded,
    letters,
    produce,
    reading,
    stage_topics,
    window_start,
)

from edream.deadletter import dead_letter
from edream.runtime.supervisor import StageSupervisor
from edream.topology import load_topology
from streams.agents.intervals import stage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _fleet(t0: int) -> list[tuple[int, dict]]:
    """Six meters on partitions 0-2 (one reading a minute for 40 min, locally out of order so closed windows get
    corrections), and a meter alone on partition 3 that goes silent after 10 min."""
    rnd = random.Random(11)
    parted = []
    for i in range(6):
        rs = [reading(f"a{i}", t0 + k * MIN, 300.0 * (i + 1) + 7 * (k % 5)) for k in range(41)]
        for j in range(0, 40, 8):
            burst = rs[j : j + 8]
            rnd.shuffle(burst)
            rs[j : j + 8] = burst
        rs.append(reading(f"a{i}", t0 + 16 * MIN + 30_000, 0.0))  # late, inside a closed window
        parted += [(i % 3, r) for r in rs]
    parted += [(3, reading("silent", t0 + k * MIN, 800.0)) for k in range(11)]
    return parted


def _poison(topic: str, t0: int) -> list[tuple[int, bytes, bytes]]:
    bad_unit = reading("a0", t0 + 5 * MIN, 1.0, unit="kW")
    too_late = reading("a2", t0 - 2 * 3_600_000, 1.0)
    other = dead_letter("x", 0, 0, None, b"x", "test", "reason")
    return [
        (0, b"a0", b"\x00not avro"),
        (1, b"a1", SERDE.encode("Measurement", bad_unit, topic)),
        (2, b"a2", SERDE.encode("Measurement", too_late, topic)),
        (0, b"a0", SERDE.encode("DeadLetter", other, topic)),
    ]


def _worker(settings, topo, app_id: str, data_dir) -> tuple[StageSupervisor, threading.Thread]:
    s = settings.model_copy(update={"edream_app_id": app_id, "edream_data_dir": data_dir})
    topology = load_topology(topo.topology_path)
    sup = StageSupervisor(stage(s, topology, CFG), s, topo.dlq, None, 4, handle_signals=False)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def _stop(*workers: tuple[StageSupervisor, threading.Thread]) -> None:
    for sup, _ in workers:
        sup.stop()
    for _, t in workers:
        t.join(30)
        assert not t.is_alive()


def _late(t0: int) -> list[tuple[int, dict]]:
    """Readings for windows the wall clock closed already: every one is a correction (a higher version)."""
    parted = [
        (i % 3, reading(f"a{i}", t0 + k * MIN + 15_000, 50.0 * k)) for i in range(6) for k in (3, 17, 33)
    ]
    return parted + [(3, reading("silent", t0 + 5 * MIN + 20_000, 0.0))]


def _wait_up(*workers: tuple[StageSupervisor, threading.Thread], timeout: float = 60.0) -> None:
    """Until every worker processed a tick (so each has partitions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(w[0].health.status == "UP" for w in workers):
        time.sleep(0.3)
    assert all(w[0].health.status == "UP" for w in workers)


def test_stage_dead_letters_silent_meter_and_two_workers(
    test_settings, renamed_topology, kafka_bootstrap, tmp_path
):
    t0 = window_start(int(time.time() * 1000))
    fleet, late = _fleet(t0), _late(t0)
    ref = Reference()
    ref.feed(fleet)
    now = int(time.time() * 1000)
    ref.tick(now)
    first = set(ref.records)
    ref.feed(late)
    ref.tick(now + CFG.settle_ms)  # the stage's ticks go on: the last corrected windows settle
    expected = ref.records
    assert max(r["version"] for r in expected.values()) >= 3, "the input must produce corrections"
    assert f"silent/{t0}/1" in first, "the silent meter's window closes by the wall clock"
    assert len(expected) > len(first)

    one, two = (stage_topics(renamed_topology, kafka_bootstrap) for _ in range(2))
    for topo in (one, two):
        produce(kafka_bootstrap, topo.raw, encoded(topo.raw, fleet) + _poison(topo.raw, t0))

    w = _worker(test_settings, one, f"iv1-{uuid.uuid4().hex[:6]}", tmp_path / "one")
    assert set(collect(kafka_bootstrap, one.out, first, quiet=1.0)) >= first
    produce(kafka_bootstrap, one.raw, encoded(one.raw, late))
    got_one = collect(kafka_bootstrap, one.out, set(expected))
    dead = letters(kafka_bootstrap, one.dlq, 4)
    _stop(w)
    assert got_one == expected
    assert sorted(d["error_type"] for d in dead) == [
        "decode_error",
        "too_late",
        "unit_mismatch",
        "wrong_schema",
    ]
    assert {d["stage"] for d in dead} == {"stage:intervals"}
    assert b"\x00not avro" in {bytes(d["original"]) for d in dead}
    assert w[0].health.dead_letters == 4 and w[0].health.last_tick_at is not None

    app = f"iv2-{uuid.uuid4().hex[:6]}"
    a = _worker(test_settings, two, app, tmp_path / "two-a")
    b = _worker(test_settings, two, app, tmp_path / "two-b")
    _wait_up(a, b)
    assert set(collect(kafka_bootstrap, two.out, first, quiet=1.0)) >= first
    in_before = (a[0].health.events_in, b[0].health.events_in)
    produce(kafka_bootstrap, two.raw, encoded(two.raw, late))
    got_two = collect(kafka_bootstrap, two.out, set(expected))
    _stop(a, b)
    assert a[0].health.events_in > in_before[0] and b[0].health.events_in > in_before[1], (
        "both workers must process the late readings"
    )
    assert got_two == got_one
