"""The grid stage on the real broker through StageSupervisor: prosumers' forecasts re-keyed to their grid, the
congestion forecast on the tick with the processor's figures, the DSO role's signed request for the overloaded
slots only, a bad forecast dead-lettered with the reason, a prosumer's profile recovered from the changelog after
the local state is deleted, and the records in their ClickHouse table (chDB) through the topology's sink."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from edream.avro_schemas import contract
from edream.demo.keys import demo_key
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.sink_writer import Positioned, SinkWriter
from edream.topology import load_topology
from streams.agents.grid import stage
from streams.flex.requests import FlexRequest
from tools.sim.grid_feed import SLOT_MS, forecast, write_feeder_grid

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
CANONICAL = ("forecast.profiles.v1", "grid.congestion.v1", "flex.requests.v1", "platform.deadletter.v1")
SERDE = Serde()
DSO = "dso-grid"
#: p0 and p1 at 100 kW, 160 kW in slots 2-3: the 250 kVA transformer overloads there
KW = [100.0, 100.0, 160.0, 160.0, 100.0, 100.0]


class GridStage:
    def __init__(self, renamed_topology, settings, bootstrap: str, tmp_path):
        path, rename = renamed_topology()
        self.topics = {c: rename[c] for c in CANONICAL}
        self.topology, self.bootstrap = load_topology(path), bootstrap
        grid = write_feeder_grid(tmp_path / "grid", prosumers=("p0", "p1", "p2"))
        self.settings = settings.model_copy(
            update={
                "edream_data_dir": tmp_path / "data",
                "grid_configs": str(grid),
                "grid_dso_id": DSO,
                "grid_dso_key": SecretStr(demo_key(1, DSO)),
                # proof of relief off: its two more re-keyed inputs add ~9 s to each stage start here (8 more
                # partitions to assign); tested on the processor in tests/unit/grid/test_grid_proof_of_relief.py
                "grid_relief": False,
            }
        )
        self.spec = dataclasses.replace(
            stage(self.settings, self.topology), name=f"grid-{path.parent.name[-8:]}"
        )
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for fut in admin.create_topics(
            [NewTopic(t, 4, 1, config=CONFIG) for t in self.topics.values()]
        ).values():
            fut.result(15)
        self.proc, self.state = self.spec.make({}), MemoryState()  # the expected figures, in memory

    def produce(self, items: list[tuple[bytes, bytes]]) -> None:
        p = Producer({"bootstrap.servers": self.bootstrap})
        for k, v in items:
            p.produce(self.topics["forecast.profiles.v1"], key=k, value=v)
        assert p.flush(10) == 0

    def forecasts(self, recs: list[dict]) -> list[tuple[bytes, bytes]]:
        """Encoded (key entity_id, value); the valid ones also fed to the in-memory processor."""
        topic = self.topics["forecast.profiles.v1"]
        out = []
        for r in recs:
            value = SERDE.encode("Forecast", r, topic)
            for key in self.spec.rekey[topic](value):
                self.proc.on_record(Record(topic, 0, 0, key, value, 0), self.state)
            out.append((r["entity_id"].encode(), value))
        return out

    def expected(self) -> dict[str, dict]:
        emits = self.proc.on_tick(int(time.time() * 1000), 0, self.state)
        return {r["event_id"]: r for r in (SERDE.decode(e.value)[1] for e in emits) if "grid_id" in r}

    def start(self) -> tuple[StageSupervisor, threading.Thread]:
        sup = StageSupervisor(
            self.spec, self.settings, self.topics["platform.deadletter.v1"], None, 4, handle_signals=False
        )
        t = threading.Thread(target=sup.run, daemon=True)
        t.start()
        return sup, t

    def read(self, canonical: str, done, timeout: float = 30.0) -> list[dict]:
        name = self.topics[canonical]
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "reader", "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(name, p, 0) for p in range(4)])
            got: list[dict] = []
            deadline = time.monotonic() + timeout
            while not done(got) and time.monotonic() < deadline:
                got += [SERDE.decode(m.value(), name)[1] for m in c.consume(1000, 0.5) if not m.error()]
            return got
        finally:
            c.close()


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(30)
    assert not t.is_alive()


def _issued(recs: list[dict], issued_at: int) -> dict[str, dict]:
    return {r["event_id"]: r for r in recs if r["forecast_issued_at"] == issued_at}


def test_congestion_requests_dead_letters_recovery_and_sink(
    test_settings, renamed_topology, kafka_bootstrap, tmp_path, chdb_client, unique_table
):
    g = GridStage(renamed_topology, test_settings, kafka_bootstrap, tmp_path)
    now = int(time.time() * 1000)
    first = now - now % SLOT_MS + SLOT_MS  # the next quarter hour: inside the horizon whenever the tick comes
    issued1, issued2 = now - 2_000, now - 1_000
    good = g.forecasts([forecast(p, first, KW, issued1) for p in ("p0", "p1")])
    stray = (
        b"px",
        SERDE.encode("Forecast", forecast("px", first, KW, issued1), g.topics["forecast.profiles.v1"]),
    )
    poison = forecast("p0", first, KW, issued1)
    poison["points"][0]["value"] = float("nan")
    g.produce([*good, stray, (b"p0", SERDE.encode("Forecast", poison, g.topics["forecast.profiles.v1"]))])
    want1 = g.expected()
    assert len(want1) == 6 and sum(r["overloaded"] for r in want1.values()) == 2

    sup, t = g.start()
    got1 = _issued(g.read("grid.congestion.v1", lambda got: len(_issued(got, issued1)) >= 6), issued1)
    assert set(got1) == set(want1)
    for eid, r in got1.items():
        assert r["loading_percent"] == pytest.approx(want1[eid]["loading_percent"], abs=1e-9)
        assert r["overloaded"] == want1[eid]["overloaded"] and r["missing_forecasts"] == 1  # p2: none, 0 kW
    requests = [FlexRequest.from_avro(r) for r in g.read("flex.requests.v1", lambda got: len(got) >= 1)]
    assert len(requests) == 1 and requests[0].dso_id == DSO and requests[0].area_id == "feeder"
    assert [s.slot_start for s in requests[0].slots] == [first + 2 * SLOT_MS, first + 3 * SLOT_MS]
    letters = g.read("platform.deadletter.v1", lambda got: len(got) >= 1, timeout=10)
    assert len(letters) == 1 and "value" in letters[0]["error"], letters  # the NaN; the stray px is not ours
    _stop(sup, t)

    # local state lost: p0's profile comes back from the changelog. Had it not, p1's new forecast alone would be
    # computed with p0 at 0 kW (missing_forecasts 2, other loadings).
    shutil.rmtree(sup.state_dir)
    g.produce(g.forecasts([forecast("p1", first, [20.0] * len(KW), issued2)]))
    want2 = g.expected()
    sup, t = g.start()
    got2 = _issued(g.read("grid.congestion.v1", lambda got: len(_issued(got, issued2)) >= 6), issued2)
    _stop(sup, t)
    assert set(got2) == set(want2) and {r["missing_forecasts"] for r in got2.values()} == {1}
    for eid, r in got2.items():
        assert r["loading_percent"] == pytest.approx(want2[eid]["loading_percent"], abs=1e-9)
    assert not any(r["overloaded"] for r in got2.values())  # 180 kW peak on 250 kVA

    # the sink keeps the latest forecast per point and slot
    sink = next(s for s in g.topology.sinks if s.name == "grid_congestion")
    table = unique_table("grid_congestion")
    writer = SinkWriter(chdb_client, sink.model_copy(update={"table": table}), contract("GridCongestion"))
    rows = [Positioned(r, sink.topic, 0, i) for i, r in enumerate([*got1.values(), *got2.values()])]
    assert writer.write(rows).written == 12
    final = chdb_client.query(
        f"SELECT count(), min(forecast_issued_at), max(loading_percent) FROM {table} FINAL"
    ).result_rows[0]
    assert final[0] == 6 and final[2] < 100
