"""The forecasts stage on the real broker through StageSupervisor: outputs, dead letters, changelog recovery,
two workers.

The expected output is the stage's own processor run over the same intervals with MemoryState (which the unit
tests prove equal to the hosted ForecastStream per prosumer). Forecast and ForecastAccuracy ids and bytes are
deterministic, so replays after a restart may repeat a record but the *set* of (topic, key, value) must be
exactly the expected one.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.topology import load_topology
from streams.agents.forecasts import stage

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
STEP = 900_000
DAY_MS = 86_400_000
#: event time starts three days back, well within the valid window of interval ends (31 days)
DAY0 = (int(time.time() * 1000) // DAY_MS - 3) * DAY_MS
PROSUMERS = [f"p{i}" for i in range(8)]
SERDE = Serde()


def interval(prosumer: str, start: int, import_wh: float, export_wh: float) -> bytes:
    rec = {
        "event_id": f"dev-{prosumer}/{start}/1",
        "device_id": f"dev-{prosumer}",
        "prosumer_id": prosumer,
        "interval_start": start,
        "interval_end": start + STEP,
        "import_wh": import_wh,
        "export_wh": export_wh,
        "avg_kw": import_wh * 4 / 1000,
        "max_kw": import_wh * 4 / 1000,
        "samples": 180,
        "expected_samples": 180,
        "completeness": 1.0,
        "estimated": False,
        "method": "POWER_INTEGRATION",
        "version": 1,
        "computed_at": start + STEP,
    }
    return SERDE.encode("IntervalEnergy", rec, "meter.intervals.15m.v1")


def day(d: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of every prosumer's intervals of day ``d``, slot by slot."""
    out = []
    for i in range(d * 96, (d + 1) * 96):
        hour = (i % 96) / 4
        for n, p in enumerate(PROSUMERS):
            imp = 150 + 20 * n + 100 * math.sin(hour / 24 * 2 * math.pi) + (i * 7919 % 13)
            exp = max(0.0, 250 * math.sin((hour - 6) / 12 * math.pi)) if 6 <= hour <= 18 else 0.0
            out.append((p.encode(), interval(p, DAY0 + i * STEP, imp, exp)))
    return out


POISON = [
    (b"p0", interval("p0", DAY0 + 200 * STEP, math.nan, 0.0)),  # NaN energy
    (b"dev-p1", interval("p1", DAY0 + 200 * STEP, 1.0, 0.0)),  # keyed by device: the state would split
]


class Stage:
    """The forecasts StageSpec on a renamed copy of the topology, its topics created on the broker."""

    def __init__(self, renamed_topology, settings, bootstrap: str):
        path, self.rename = renamed_topology()
        self.topology_path = path
        suffix = path.parent.name.rsplit("-", 1)[1]
        spec = stage(settings, load_topology(path))
        self.spec = dataclasses.replace(spec, name=f"forecasts-{suffix}")
        self.inp = self.rename["meter.intervals.15m.v1"]
        self.outs = (self.rename["forecast.profiles.v1"], self.rename["forecast.accuracy.v1"])
        self.dlq = self.rename["platform.deadletter.v1"]
        self.bootstrap = bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap})
        new = [NewTopic(t, 4, 1, config=CONFIG) for t in (self.inp, *self.outs, self.dlq)]
        for fut in admin.create_topics(new).values():
            fut.result(15)

    def expected(
        self, items: list[tuple[bytes, bytes]], views: dict | None = None, spec=None
    ) -> set[tuple[str, bytes, bytes]]:
        """The records of the stage's processor (of ``spec``, default this stage's) over ``items`` in memory."""
        proc, state, out = (spec or self.spec).make(views or {}), MemoryState(), set()
        for i, (k, v) in enumerate(items):
            try:
                out |= {tuple(e) for e in proc.on_record(Record(self.inp, 0, i, k, v, 0), state)}
            except Exception:  # noqa: BLE001 - the poison records: dead letters, no output
                continue
        return out

    def produce(self, items: list[tuple[bytes, bytes]]) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap})
        for k, v in items:
            p.produce(self.inp, key=k, value=v)
        p.flush(10)

    def start(self, settings) -> tuple[StageSupervisor, threading.Thread]:
        sup = StageSupervisor(self.spec, settings, self.dlq, None, 4, handle_signals=False)
        t = threading.Thread(target=sup.run, daemon=True)
        t.start()
        return sup, t

    def outputs(self, want: set, timeout: float = 120.0) -> set[tuple[str, bytes, bytes]]:
        """Everything on the output topics once it covers ``want`` (or at the timeout)."""
        return self._read(self.outs, lambda got: want <= got, timeout)

    def dead_letters(self, n: int, timeout: float = 60.0) -> list[dict]:
        got = self._read((self.dlq,), lambda got: len(got) >= n, timeout)
        return [Serde().decode(v, self.dlq)[1] for _, _, v in got]

    def _read(self, topics, done, timeout: float) -> set[tuple[str, bytes, bytes]]:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "reader", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(t, p, 0) for t in topics for p in range(4)])
            got: set[tuple[str, bytes, bytes]] = set()
            deadline = time.monotonic() + timeout
            while not done(got) and time.monotonic() < deadline:
                for m in c.consume(1000, 0.5):
                    if not m.error():
                        got.add((m.topic(), m.key(), m.value()))
            time.sleep(1.0)  # anything beyond the expected set would arrive with it: read what is left
            for m in c.consume(10000, 1.0):
                if not m.error():
                    got.add((m.topic(), m.key(), m.value()))
            return got
        finally:
            c.close()

    def input_partitions(self) -> set[int]:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "reader", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(self.inp, p, 0) for p in range(4)])
            seen, deadline = set(), time.monotonic() + 10
            while time.monotonic() < deadline and len(seen) < 4:
                seen |= {m.partition() for m in c.consume(1000, 0.5) if not m.error()}
            return seen
        finally:
            c.close()


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(30)
    assert not t.is_alive()


def test_outputs_dead_letters_and_recovery_from_the_changelog(
    test_settings, renamed_topology, kafka_bootstrap
):
    st = Stage(renamed_topology, test_settings, kafka_bootstrap)
    first = day(0) + POISON + day(1)
    second = day(2)
    want_first = st.expected(first)
    want_all = st.expected(first + second)
    names = {SERDE.decode(v, t)[0] for t, _, v in want_first}
    assert names == {"Forecast", "ForecastAccuracy"} and len(want_first) > 3000

    st.produce(first)
    sup, t = st.start(test_settings)
    assert st.outputs(want_first) == want_first
    letters = st.dead_letters(2)
    reasons = sorted(r["error"] for r in letters)
    assert all(r["stage"] == f"stage:{st.spec.name}" for r in letters)
    assert "import_wh" in reasons[0] and "not the record's prosumer_id" in reasons[1], reasons
    assert sup.health.dead_letters == 2
    _stop(sup, t)

    # the local state is lost: every prosumer's models come back from the changelog topic. Had they not, day 2
    # would start from fresh models (all horizons issued on the first interval, other values): not the set.
    shutil.rmtree(sup.state_dir)
    st.produce(second)
    sup, t = st.start(test_settings)
    assert st.outputs(want_all) == want_all
    _stop(sup, t)


def test_two_workers_produce_the_records_of_one(test_settings, renamed_topology, kafka_bootstrap):
    st = Stage(renamed_topology, test_settings, kafka_bootstrap)
    items = day(0) + POISON + day(1) + day(2)
    want = st.expected(items)
    a = st.start(test_settings.model_copy(update={"edream_data_dir": test_settings.edream_data_dir / "fw1"}))
    b = st.start(test_settings.model_copy(update={"edream_data_dir": test_settings.edream_data_dir / "fw2"}))
    for i in range(0, len(items), 400):  # in chunks while the group forms, as new intervals would arrive
        st.produce(items[i : i + 400])
        time.sleep(1.0)
    assert len(st.input_partitions()) >= 3  # whatever the assignment, both workers get prosumers
    assert st.outputs(want) == want
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (a[0].health.events_in and b[0].health.events_in):
        time.sleep(0.5)
    assert a[0].health.events_in > 0 and b[0].health.events_in > 0, "both workers must get partitions"
    assert len(st.dead_letters(2)) >= 2
    _stop(*a)
    _stop(*b)


def test_ensemble_model_outputs_and_recovery_from_the_changelog(
    test_settings, renamed_topology, kafka_bootstrap
):
    """FORECAST_MODEL=ensemble on the runtime: its state (one small key and six series keys per prosumer) comes
    back from the changelog, and the records are exactly those of its processor on MemoryState."""
    settings = test_settings.model_copy(update={"forecast_model": "ensemble"})
    st = Stage(renamed_topology, settings, kafka_bootstrap)
    first, second = day(0), day(1)[: 16 * len(PROSUMERS)]  # day 1 until 04:00: intra-day issued
    proc, state = st.spec.make({}), MemoryState()
    runs = [
        {
            tuple(e)
            for i, (k, v) in enumerate(part)
            for e in proc.on_record(Record(st.inp, 0, i, k, v, 0), state)
        }
        for part in (first, second)
    ]
    want_first, want_all = runs[0], runs[0] | runs[1]
    recs = [SERDE.decode(v, t)[1] for t, _, v in want_all]
    assert {r["prediction_granularity"] for r in recs if "issued_at" in r} == {
        "DAYAHEAD",
        "INTRA_DAY",
        "ONE_HOUR_AHEAD",
    }
    assert any(r.get("coverage") is not None for r in recs) and all(r["model"] == "ensemble" for r in recs)
    assert any(p["lower"] is not None for r in recs if "issued_at" in r for p in r["points"])

    st.produce(first)
    sup, t = st.start(settings)
    assert st.outputs(want_first) == want_first
    _stop(sup, t)
    shutil.rmtree(sup.state_dir)  # fresh models on day 1 would issue other values: not the set
    st.produce(second)
    sup, t = st.start(settings)
    assert st.outputs(want_all) == want_all
    _stop(sup, t)
