"""The stream runtime on the real broker: keyed partition state, dead letters, ticks, recovery from the changelog,
two workers in one group.

The toy stage counts records per key (state key ``n:<key>``) and emits ``<key>=<count>``; the value ``poison``
raises. Outputs are deterministic per (key, count), so replays after a restart or rebalance repeat an output but
never change or lose one.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import defaultdict

import pytest
from confluent_kafka import Producer

from edream.runtime.contract import Emit, Record, StageSpec
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}


class Counter:
    def __init__(self, out: str):
        self.out = out

    def on_record(self, record: Record, state):
        if record.value == b"poison":
            state.set("n:" + record.key.decode(), b"999")  # must never reach the store
            raise ValueError("poisoned value")
        k = "n:" + record.key.decode()
        n = int(state.get(k) or b"0") + 1
        state.set(k, str(n).encode())
        return [Emit(self.out, record.key, f"{record.key.decode()}={n}".encode())]

    def on_tick(self, now_ms, partition, state):
        state.set("tick", str(now_ms).encode())
        return []


def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for k, v in items:
        p.produce(topic, key=k, value=v)
    p.flush(10)


def _start(settings, spec, dlq, partitions=4) -> tuple[StageSupervisor, threading.Thread]:
    sup = StageSupervisor(spec, settings, dlq, None, partitions, handle_signals=False)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(30)
    assert not t.is_alive()


def _latest(read_topic, topic: str, n: int) -> dict[str, int]:
    got = read_topic(topic, n, timeout=60)
    best: dict[str, int] = defaultdict(int)
    for m in got:
        key, count = m.value().decode().split("=")
        best[key] = max(best[key], int(count))
    return dict(best)


def test_counts_dead_letters_ticks_and_recovery(test_settings, unique_topic, read_topic, kafka_bootstrap):
    src, out, dlq = (unique_topic(p, 4, CONFIG) for p in ("rt-in", "rt-out", "rt-dlq"))
    name = f"toy{int(time.time() * 1000) % 100000}"
    spec = StageSpec(name, (src,), (out,), lambda views: Counter(out), tick_ms=500)
    keys = [f"k{i}".encode() for i in range(20)]
    _produce(kafka_bootstrap, src, [(k, b"x") for _ in range(5) for k in keys] + [(b"k0", b"poison")])

    sup, t = _start(test_settings, spec, dlq)
    assert _latest(read_topic, out, 100) == {k.decode(): 5 for k in keys}
    letters = read_topic(dlq, 1, timeout=30)
    assert len(letters) == 1
    rec = Serde(test_settings).decode(letters[0].value(), dlq)[1]
    assert rec["stage"] == f"stage:{name}" and "poisoned value" in rec["error"]
    assert sup.health.dead_letters == 1 and sup.health.events_in >= 101
    deadline = time.monotonic() + 20
    while sup.health.last_tick_at is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sup.health.last_tick_at is not None
    _stop(sup, t)

    # a restart with the local RocksDB state kept continues the counts
    _produce(kafka_bootstrap, src, [(k, b"x") for k in keys])
    sup, t = _start(test_settings, spec, dlq)
    assert _latest(read_topic, out, 120) == {k.decode(): 6 for k in keys}
    _stop(sup, t)

    # the local RocksDB state is lost: the counts come back from the changelog topic
    shutil.rmtree(sup.state_dir)
    _produce(kafka_bootstrap, src, [(k, b"x") for k in keys])
    sup, t = _start(test_settings, spec, dlq)
    assert _latest(read_topic, out, 140) == {k.decode(): 7 for k in keys}
    _stop(sup, t)


def test_two_workers_share_partitions_and_agree(test_settings, unique_topic, read_topic, kafka_bootstrap):
    src, out, dlq = (unique_topic(p, 4, CONFIG) for p in ("rt2-in", "rt2-out", "rt2-dlq"))
    name = f"toy2{int(time.time() * 1000) % 100000}"
    spec = StageSpec(name, (src,), (out,), lambda views: Counter(out))
    keys = [f"k{i}".encode() for i in range(40)]
    a = _start(
        test_settings.model_copy(update={"edream_data_dir": test_settings.edream_data_dir / "w1"}), spec, dlq
    )
    b = _start(
        test_settings.model_copy(update={"edream_data_dir": test_settings.edream_data_dir / "w2"}), spec, dlq
    )
    # both in the group before the records come (a tick = partitions assigned): on a loaded machine the second may
    # otherwise join after the first has processed everything
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (a[0].health.last_tick_at and b[0].health.last_tick_at):
        time.sleep(0.5)
    for _ in range(10):
        _produce(kafka_bootstrap, src, [(k, b"x") for k in keys])
        time.sleep(0.3)
    assert _latest(read_topic, out, 400) == {k.decode(): 10 for k in keys}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (a[0].health.events_in and b[0].health.events_in):
        time.sleep(0.5)
    assert a[0].health.events_in > 0 and b[0].health.events_in > 0, "both workers must get partitions"
    _stop(*a)
    _stop(*b)


class Fanned:
    """Counts per key; ``orders`` records name several keys (fan-out); ``vip`` keys come from a registry view."""

    def __init__(self, out: str, views):
        self.out, self.views = out, views

    def on_record(self, record: Record, state):
        k = record.key.decode()
        n = int(state.get("n:" + k) or b"0") + 1
        state.set("n:" + k, str(n).encode())
        (view,) = self.views.values()
        tag = view.get(record.key) or b"-"
        return [Emit(self.out, record.key, f"{k}={n}:{tag.decode()}".encode())]

    def on_tick(self, now_ms, partition, state):
        return []


def test_fan_out_rekey_and_registry_view(test_settings, unique_topic, read_topic, kafka_bootstrap):
    orders, reg, out, dlq = (unique_topic(p, 4, CONFIG) for p in ("rt3-ord", "rt3-reg", "rt3-out", "rt3-dlq"))
    _produce(kafka_bootstrap, reg, [(b"p1", b"vip")])
    name = f"toy3{int(time.time() * 1000) % 100000}"
    spec = StageSpec(
        name,
        (orders,),
        (out,),
        lambda views: Fanned(out, views),
        rekey={orders: lambda _k, v: [p.encode() for p in v.decode().split(",") if p]},
        views=(reg,),
    )
    _produce(kafka_bootstrap, orders, [(b"o1", b"p1,p2,p3"), (b"o2", b"p2"), (b"o3", b"")])
    sup, t = _start(test_settings, spec, dlq)
    got = sorted(m.value().decode() for m in read_topic(out, 4, timeout=60))
    assert got == ["p1=1:vip", "p2=1:-", "p2=2:-", "p3=1:-"]
    _stop(sup, t)


class Sleeper(Counter):
    """A processor whose loop hangs on the value ``hang`` (a stuck library call, a dead lock)."""

    def __init__(self, out: str, release: threading.Event):
        super().__init__(out)
        self.release = release

    def on_record(self, record: Record, state):
        if record.value == b"hang":
            self.release.wait(120)
        return super().on_record(record, state)


def test_a_hung_processing_loop_is_reported_and_handed_to_on_hang(
    test_settings, unique_topic, read_topic, kafka_bootstrap
):
    src, out, dlq, health = (unique_topic(p, 2, CONFIG) for p in ("hg-in", "hg-out", "hg-dlq", "hg-health"))
    release, hung = threading.Event(), threading.Event()
    name = f"hang{int(time.time() * 1000) % 100000}"
    spec = StageSpec(name, (src,), (out,), lambda views: Sleeper(out, release), tick_ms=500)
    sup = StageSupervisor(spec, test_settings, dlq, health, 2, handle_signals=False, on_hang=hung.set)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    try:
        _produce(kafka_bootstrap, src, [(b"a", b"x")])
        assert _latest(read_topic, out, 1) == {"a": 1}  # alive: nothing reported as hung
        assert not hung.is_set() and sup.health.status == "UP"
        # started (a start takes about 5 s on the embedded broker): from now on 4 s of silence is a hang
        sup.settings = test_settings.model_copy(update={"runtime_hang_after_s": 4.0})
        _produce(kafka_bootstrap, src, [(b"a", b"hang")])
        assert hung.wait(60), "a loop stuck in on_record must be detected"
        reports = [Serde().decode(m.value())[1] for m in read_topic(health, 200, timeout=5)]
        assert any(r["status"] == "HUNG" and "no progress" in (r["last_error"] or "") for r in reports)
    finally:
        release.set()
        _stop(sup, t)


def test_a_run_that_never_starts_is_reported_and_handed_to_on_hang(
    test_settings, unique_topic, kafka_bootstrap
):
    """A run stuck before it handles anything (here its processor's construction blocks, as a retry once blocked
    before creating its topics) is HUNG once its clock's ticks reached the broker for ``runtime_start_deadline_s``."""
    src, out, dlq, health = (unique_topic(p, 2, CONFIG) for p in ("ns-in", "ns-out", "ns-dlq", "ns-health"))
    release, hung = threading.Event(), threading.Event()

    def make(views):
        release.wait(120)
        return Counter(out)

    spec = StageSpec(f"nostart{int(time.time() * 1000) % 100000}", (src,), (out,), make, tick_ms=500)
    settings = test_settings.model_copy(update={"runtime_start_deadline_s": 4.0})
    sup = StageSupervisor(spec, settings, dlq, health, 2, handle_signals=False, on_hang=hung.set)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    try:
        assert hung.wait(60), "a run that never starts must be detected"
        assert sup.health.status == "HUNG" and "since it started" in sup.health.last_error
    finally:
        release.set()
        _stop(sup, t)
