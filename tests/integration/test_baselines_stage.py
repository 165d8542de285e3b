"""The baselines stage on the real broker through :class:`StageSupervisor`: the Baseline records of the
processor run in memory, bad intervals dead-lettered with the reason, the same records after a restart whose
local state was deleted (changelog recovery), and the same set from two workers in one group as from one.

Orders are produced as the area desk produces them, one FlexAllocation per prosumer (key prosumer_id, murmur2 like
the runtime's producers), before the intervals, so which days are event days does not depend on how the two inputs
interleave.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from edream.deadletter import DEADLETTER_TOPIC
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.topology import load_topology
from streams.agents.baselines import stage
from streams.analytics.baseline_processor import ALLOCATIONS_TOPIC, BASELINE_TOPIC, INTERVAL_TOPIC
from streams.analytics.baselines import DAY_MS, SLOT_MS
from streams.flex.allocations import allocation_outs
from streams.flex.orders import FlexOrder
from tools.sim.interval_feed import flex_order, interval, intervals

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
PROSUMERS = [f"p{i}" for i in range(8)]
START = (int(time.time() * 1000) // DAY_MS - 11) * DAY_MS  # 11 days ago, midnight UTC
FIRST_DAYS = 10  # then 40 slots of the 11th day (yesterday) after the restart

Msg = tuple[str, bytes, bytes]  # (canonical topic, key, value)


def _allocations(serde: Serde) -> list[Msg]:
    day = lambda d, s: START + d * DAY_MS + s * SLOT_MS  # noqa: E731
    orders = [
        flex_order("o1", [("p0", day(6, 70)), ("p1", day(6, 72))]),
        flex_order("o2", [("p2", day(8, 70))]),
        flex_order("o3", [("p3", day(7, 70))], status="CANCELLED"),
    ]
    return [
        (ALLOCATIONS_TOPIC, a.key.encode(), serde.encode(a.schema, a.record, ALLOCATIONS_TOPIC))
        for o in orders
        for a in allocation_outs(FlexOrder.from_avro(o))
    ]


def _intervals(serde: Serde, first_slot: int, slots: int) -> list[Msg]:
    return [
        (INTERVAL_TOPIC, r["prosumer_id"].encode(), serde.encode("IntervalEnergy", r, INTERVAL_TOPIC))
        for r in intervals(PROSUMERS, START + first_slot * SLOT_MS, slots)
    ]


def _poison(serde: Serde) -> list[Msg]:
    nan = interval("p5", START + 3 * SLOT_MS, math.nan)
    return [
        (INTERVAL_TOPIC, b"p5", serde.encode("IntervalEnergy", nan, INTERVAL_TOPIC)),
        (INTERVAL_TOPIC, b"p6", b"junk"),
    ]


def _expected(spec, names: dict[str, str], msgs: list[Msg]) -> set[tuple[bytes, bytes]]:
    """The processor in memory over the same records, intervals re-keyed by the stage's re-key."""
    proc, state, out = spec.make({}), MemoryState(), set()
    for topic, key, value in msgs:
        rekey = spec.rekey.get(names[topic])
        for k in rekey(key, value) if rekey is not None else [key]:
            record = Record(names[topic], 0, 0, k, value, 0)
            out |= {(e.key, e.value) for e in proc.on_record(record, state)}
    return out


class Platform:
    """Renamed topics of one scenario, the stage spec on them, and helpers to feed and read them."""

    def __init__(self, settings, bootstrap: str, renamed_topology):
        path, self.names = renamed_topology()
        suffix = uuid.uuid4().hex[:6]
        self.settings, self.bootstrap = settings, bootstrap
        spec = stage(settings, load_topology(path))
        self.spec = dataclasses.replace(spec, name=f"baselines-{suffix}")
        self.dlq = self.names[DEADLETTER_TOPIC]
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wanted = [self.names[t] for t in (INTERVAL_TOPIC, ALLOCATIONS_TOPIC, BASELINE_TOPIC)] + [self.dlq]
        for fut in admin.create_topics([NewTopic(t, 4, 1, config=CONFIG) for t in wanted]).values():
            fut.result(15)

    def produce(self, msgs: list[Msg]) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap, "partitioner": "murmur2_random"})
        for topic, key, value in msgs:
            p.produce(self.names[topic], key=key, value=value)
        p.flush(10)

    def start(self, data_dir) -> tuple[StageSupervisor, threading.Thread]:
        settings = self.settings.model_copy(update={"edream_data_dir": data_dir})
        sup = StageSupervisor(self.spec, settings, self.dlq, None, 4, handle_signals=False)
        t = threading.Thread(target=sup.run, daemon=True)
        t.start()
        return sup, t

    def collect(self, topic: str, expected: set, timeout: float = 120) -> set[tuple[bytes, bytes]]:
        """Distinct (key, value) of a topic from its beginning, until ``expected`` is covered (then 3 s more)."""
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "reader", "enable.auto.commit": False})
        name = self.names.get(topic, topic)
        try:
            parts = c.list_topics(name, timeout=10).topics[name].partitions
            c.assign([TopicPartition(name, p, 0) for p in parts])
            got: set[tuple[bytes, bytes]] = set()
            deadline, settle = time.monotonic() + timeout, None
            while time.monotonic() < (settle or deadline):
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.add((m.key(), m.value()))
                if settle is None and expected <= got:
                    settle = time.monotonic() + 3
            return got
        finally:
            c.close()


def _wait(cond, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cond()


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(30)
    assert not t.is_alive()


def test_baselines_on_the_broker_recover_from_the_changelog(
    test_settings, kafka_bootstrap, renamed_topology, tmp_path
):
    pf = Platform(test_settings, kafka_bootstrap, renamed_topology)
    serde = Serde(test_settings)
    orders, first = _allocations(serde), _intervals(serde, 0, FIRST_DAYS * 96)
    rest = _intervals(serde, FIRST_DAYS * 96, 40)
    expected_first = _expected(pf.spec, pf.names, orders + first)
    expected_all = _expected(pf.spec, pf.names, orders + first + rest)
    assert len(expected_first) > len(PROSUMERS) * 96 * 5

    pf.produce(orders)
    sup, t = pf.start(tmp_path / "w")
    _wait(lambda: sup.health.events_in >= 4)  # the four allocations (one of the cancelled order)
    pf.produce(_poison(serde) + first)
    assert pf.collect(BASELINE_TOPIC, expected_first) == expected_first
    letters = [serde.decode(v, pf.dlq)[1] for _, v in pf.collect(pf.dlq, set(), timeout=5)]
    assert sorted(r["stage"] for r in letters) == [f"stage:{pf.spec.name}"] * 2
    assert sorted(r["error_type"] for r in letters) == ["DecodeError", "InvalidRecord"]
    assert any("avg_kw: nan is not finite" in r["error"] for r in letters)
    _stop(sup, t)

    # the local RocksDB state is lost: the per-prosumer history comes back from the changelog topic
    shutil.rmtree(sup.state_dir)
    pf.produce(rest)
    sup, t = pf.start(tmp_path / "w")
    assert pf.collect(BASELINE_TOPIC, expected_all) == expected_all
    _stop(sup, t)


def test_two_workers_emit_the_same_baselines_as_one(
    test_settings, kafka_bootstrap, renamed_topology, tmp_path
):
    serde = Serde(test_settings)
    msgs = _intervals(serde, 0, 8 * 96)
    outputs = []
    for workers in (1, 2):
        pf = Platform(test_settings, kafka_bootstrap, renamed_topology)
        pf.produce(_allocations(serde))
        running = [pf.start(tmp_path / f"{workers}-{i}") for i in range(workers)]
        _wait(lambda r=running: sum(s.health.events_in for s, _ in r) >= 3)
        pf.produce(msgs)
        expected = _expected(pf.spec, pf.names, _allocations(serde) + msgs)
        outputs.append(pf.collect(BASELINE_TOPIC, expected))
        assert outputs[-1] == expected
        if workers == 2:
            assert all(s.health.events_in > 0 for s, _ in running), "both workers must get partitions"
        for sup, t in running:
            _stop(sup, t)
    assert outputs[0] == outputs[1]
