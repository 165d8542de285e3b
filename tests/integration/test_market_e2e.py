"""End to end on a real (embedded Tansu) broker through the runtime: the market stage (StageSupervisor, Quix)
reads 20 registered prosumers (registry view), their forecast-built, EIP-712-signed orders for 4 slots and their
delivery intervals (re-keyed to the session of their slot); unsigned, forged and late orders are rejected; slots
clear at gate closure by event time; settlements after delivery match hand-worked values
(:mod:`tools.sim.market_day`). A poison order is dead-lettered; an order sent under a foreign key still reaches
its session (orders are re-keyed by their session id).

Then the local state is deleted and the stage restarted: the held-back intervals of one buyer settle every slot
from the state recovered from the changelog. Two workers in one group give the same outputs (ids and values) as
one processor over the same inputs.
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
import zlib
from collections.abc import Callable

import pytest
from aiokafka.partitioner import murmur2
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from edream.runtime.clock import clock_topic_name
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.topology import load_topology, topic_names
from streams.agents.market import stage
from streams.market.participants import ParticipantRegistry
from streams.market.processor import MarketProcessor
from streams.market.stream import INTERVALS_TOPIC, ORDERS_TOPIC, PARTICIPANTS_TOPIC, MarketStage
from streams.validation.limits import Limits
from tools.sim.market_day import MarketDay, Q, check_outputs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = int(time.time() * 1000)
SLOT0 = NOW - NOW % Q - 6 * 3_600_000  # the day ended 4.75 h ago: all times within the bounds
PARTITIONS = 4


def _partition(key: bytes) -> int:
    """The partition the runtime's repartition topics give ``key`` (Quix produces with librdkafka's murmur2)."""
    return (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def _spread_day() -> MarketDay:
    """The market day under the first market id whose sessions land in both halves of the partitions: Quix
    assigns ranges (0-1 to one worker, 2-3 to the other), so two workers both get sessions (with the default id
    all four sessions of a day share one half in about one run in eight)."""
    for i in range(1000):
        day = MarketDay(SLOT0, MarketDay.config.model_copy(update={"market_id": f"p2p-test-{i}"}))
        parts = {_partition(day.config.session_id(s).encode()) for s in day.slots}
        if parts & {0, 1} and parts & {2, 3}:
            return day
    raise AssertionError("no market id spreads the sessions")


DAY = _spread_day()
OUTPUTS = (
    "market.orders.accepted.v1",
    "market.clearing.v1",
    "market.trades.v1",
    "settlement.market.v1",
    "platform.rejections.v1",
)
#: distinct outputs of the day: 80 accepted, 3 rejected, 4 clearings, 32 trades, 65 settlements
EXPECTED = 80 + 3 + 4 + 32 + (17 + 16 * 3)
SERDE = Serde()


def _topology(renamed_topology, kafka_bootstrap: str):
    """The topology with unique topic names; the market's topics created with explicit configs."""
    path, rename = renamed_topology()
    topology = load_topology(path)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    names = [ORDERS_TOPIC, INTERVALS_TOPIC, PARTICIPANTS_TOPIC, "platform.deadletter.v1", *OUTPUTS]
    new = [
        NewTopic(
            rename[n],
            PARTITIONS,
            1,
            config={
                "retention.ms": "3600000",
                "cleanup.policy": "compact" if n == PARTICIPANTS_TOPIC else "delete",
            },
        )
        for n in names
    ]
    for fut in admin.create_topics(new).values():
        fut.result(15)
    return topology, topic_names(topology)


def _clock_topic(kafka_bootstrap: str, stage_name: str) -> None:
    """Created ahead: the supervisor's clock may produce its first tick (auto-creating the topic without
    ``retention.ms``, which Quix then fails on) before the stage run declares it."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    config = {"retention.ms": "3600000", "cleanup.policy": "delete"}
    for fut in admin.create_topics([NewTopic(clock_topic_name(stage_name), 4, 1, config=config)]).values():
        fut.result(15)


def _produce(bootstrap: str, items: list[tuple[str, bytes | None, bytes, int]]) -> None:
    p = Producer({"bootstrap.servers": bootstrap})
    for topic, key, value, ts in items:
        p.produce(topic, value=value, key=key, timestamp=ts)
    assert p.flush(30) == 0


def _registry(names) -> list[tuple[str, bytes, bytes, int]]:
    return [
        (
            names[PARTICIPANTS_TOPIC],
            p.participant_id.encode(),
            SERDE.encode("MarketParticipant", p.to_avro()),
            0,
        )
        for p in DAY.participants()
    ]


def _orders(names) -> list[tuple[str, bytes, bytes, int]]:
    return [
        (names[ORDERS_TOPIC], o.session_id.encode(), SERDE.encode("MarketOrder", o.to_avro()), at)
        for o, at in DAY.orders()
    ]


def _intervals(names, keep: Callable[[dict], bool]) -> list[tuple[str, bytes, bytes, int]]:
    return [
        (names[INTERVALS_TOPIC], rec["prosumer_id"].encode(), SERDE.encode("IntervalEnergy", rec), at)
        for rec, at in DAY.intervals()
        if keep(rec)
    ]


def _start(settings, spec, names, workdir) -> tuple[StageSupervisor, threading.Thread]:
    s = settings.model_copy(update={"edream_data_dir": workdir})
    sup = StageSupervisor(spec, s, names["platform.deadletter.v1"], None, 4, handle_signals=False)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(60)
    assert not t.is_alive()


def _collect(read_topic, names, done: Callable[[dict], bool], timeout: float = 120) -> dict:
    """Distinct outputs {(topic, key, value)} -> decoded (name, record), read until ``done`` or the timeout."""
    deadline = time.monotonic() + timeout
    out: dict = {}
    while time.monotonic() < deadline:
        for canonical in OUTPUTS:
            for m in read_topic(names[canonical], 10_000, timeout=2):
                out[(canonical, m.key(), m.value())] = SERDE.decode(m.value())
        if done(out):
            break
        time.sleep(1)
    return out


def _by_kind(out: dict) -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for name, rec in out.values():
        kinds.setdefault(name, []).append(rec)
    return kinds


def _in_memory() -> set[tuple[str, bytes, bytes]]:
    """The outputs of one processor over all inputs in arrival order (one partition, MemoryState)."""
    registry = ParticipantRegistry(DAY.participants())
    stage_ = MarketStage(MarketProcessor(DAY.config, registry, limits=Limits()), SERDE, {})
    state, out = MemoryState(), []
    records = [(ORDERS_TOPIC, k, v, at) for _, k, v, at in _orders({ORDERS_TOPIC: ORDERS_TOPIC})]
    records += [
        (INTERVALS_TOPIC, k, v, at) for _, k, v, at in _intervals({INTERVALS_TOPIC: INTERVALS_TOPIC}, bool)
    ]
    for topic, key, value, at in sorted(records, key=lambda r: r[3]):
        out += stage_.on_record(Record(topic, 0, 0, key, value, at), state)
    out += stage_.on_tick(NOW, 0, state)
    return {(e.topic, e.key, e.value) for e in out}


def _spec(topology, settings, kafka_bootstrap: str, suffix: str):
    spec = dataclasses.replace(stage(settings, topology, DAY.config), name=f"market{suffix}")
    _clock_topic(kafka_bootstrap, spec.name)
    return spec


def test_market_day_dead_letters_and_recovery_from_the_changelog(
    test_settings, renamed_topology, read_topic, kafka_bootstrap, tmp_path
):
    topology, names = _topology(renamed_topology, kafka_bootstrap)
    spec = _spec(
        topology, test_settings, kafka_bootstrap, str(zlib.crc32(names[ORDERS_TOPIC].encode()) % 100_000)
    )
    held_back = "pro-B0"  # B0 trades in every slot: its intervals complete every settlement
    order = DAY.orders()[0][0]
    poison = [
        (names[ORDERS_TOPIC], order.session_id.encode(), b"\x00not avro", NOW),
        (names[ORDERS_TOPIC], b"another-session", SERDE.encode("MarketOrder", order.to_avro()), NOW),
    ]
    _produce(kafka_bootstrap, _registry(names))
    _produce(
        kafka_bootstrap,
        _orders(names) + _intervals(names, lambda r: r["prosumer_id"] != held_back) + poison,
    )
    sup, t = _start(test_settings, spec, names, tmp_path / "w")
    before = EXPECTED - 65
    out = _collect(read_topic, names, lambda o: len(o) >= before)
    _stop(sup, t)
    kinds = _by_kind(out)
    assert len(out) == before and "Settlement" not in kinds, {k: len(v) for k, v in kinds.items()}
    letters = read_topic(names["platform.deadletter.v1"], 2, timeout=10)
    reasons = sorted(SERDE.decode(m.value())[1]["error"] for m in letters)
    assert len(reasons) == 1 and "schema id" in reasons[0], reasons
    assert sup.health.dead_letters == 1

    # the local state is lost; the last buyer's intervals settle every slot from the changelog's state
    shutil.rmtree(sup.state_dir)
    _produce(kafka_bootstrap, _intervals(names, lambda r: r["prosumer_id"] == held_back))
    sup, t = _start(test_settings, spec, names, tmp_path / "w")
    out = _collect(read_topic, names, lambda o: len(o) >= EXPECTED)
    _stop(sup, t)
    check_outputs(DAY, _by_kind(out))
    assert set(out) == _in_memory()


def test_two_workers_give_the_outputs_of_one(
    test_settings, renamed_topology, read_topic, kafka_bootstrap, tmp_path
):
    topology, names = _topology(renamed_topology, kafka_bootstrap)
    spec = _spec(
        topology, test_settings, kafka_bootstrap, str(zlib.crc32(names[ORDERS_TOPIC].encode()) % 100_000)
    )
    _produce(kafka_bootstrap, _registry(names))
    a = _start(test_settings, spec, names, tmp_path / "w1")
    b = _start(test_settings, spec, names, tmp_path / "w2")
    time.sleep(5)  # let both join before the input arrives
    _produce(kafka_bootstrap, _orders(names) + _intervals(names, bool))
    # two workers join, rebalance and restore before they settle: on a loaded machine that outlasts 120 s
    out = _collect(read_topic, names, lambda o: len(o) >= EXPECTED, timeout=240)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (a[0].health.events_in and b[0].health.events_in):
        time.sleep(0.5)
    _stop(*a)
    _stop(*b)
    assert a[0].health.events_in > 0 and b[0].health.events_in > 0, "both workers must get partitions"
    assert set(out) == _in_memory()
    check_outputs(DAY, _by_kind(out))
