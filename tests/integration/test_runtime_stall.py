"""A stalled broker (SIGSTOP for 45 s, then SIGCONT) must not kill a stage: the health board shows the stall
(the stage's health record goes stale: DOWN), and afterwards the stage processes new input again (UP).

Runs on a broker of its own, so stopping it does not disturb the other tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from edream.embedded.broker import EmbeddedBroker
from edream.runtime.contract import Emit, StageSpec
from edream.runtime.health_board import StageHealthBoard
from edream.runtime.supervisor import StageSupervisor
from edream.settings import Settings
from edream.topology import Topic, Topology

pytestmark = [pytest.mark.integration, pytest.mark.slow]
STALL_S = 45


class Echo:
    def __init__(self, out: str):
        self.out = out

    def on_record(self, record, state):
        return [Emit(self.out, record.key, record.value)]

    def on_tick(self, now_ms, partition, state):
        return []


def _wait(pred, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


@pytest.mark.timeout(400)
def test_broker_stall_is_shown_and_the_stage_recovers(tmp_path):
    broker = EmbeddedBroker(tmp_path)
    broker.start()
    try:
        bs = broker.bootstrap
        names = {k: f"stall.{k}.{uuid.uuid4().hex[:6]}" for k in ("in", "out", "dlq", "health")}
        cfg = {"retention.ms": "3600000", "cleanup.policy": "delete"}
        admin = AdminClient({"bootstrap.servers": bs})
        topics = [NewTopic(n, 1 if k == "health" else 2, 1, config=cfg) for k, n in names.items()]
        for fut in admin.create_topics(topics).values():
            fut.result(15)
        settings = Settings(kafka_bootstrap_servers=bs, edream_data_dir=tmp_path, kafka_session_timeout_s=6.0)
        spec = StageSpec("stall-echo", (names["in"],), (names["out"],), lambda views: Echo(names["out"]))
        sup = StageSupervisor(spec, settings, names["dlq"], names["health"], 2, handle_signals=False)
        runner = threading.Thread(target=sup.run, daemon=True)
        runner.start()
        topo = Topology(
            topics=[
                Topic(
                    name=names["health"],
                    partitions=1,
                    retention_ms=3600000,
                    key="stage@worker_id",
                    value_schema="StageHealth.avsc",
                    description="health",
                )
            ]
        )
        board = StageHealthBoard(settings, topo, bs)
        producer = Producer({"bootstrap.servers": bs})
        consumer = Consumer(
            {"bootstrap.servers": bs, "group.id": "stall-reader", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([names["out"]])
        seen: set[bytes] = set()

        def read(expected: set[bytes]) -> bool:
            for m in consumer.consume(100, 0.5):
                if not m.error():
                    seen.add(m.value())
            return expected <= seen

        def send(tag: str) -> set[bytes]:
            values = {f"{tag}-{i}".encode() for i in range(20)}
            for v in values:
                producer.produce(names["in"], key=v, value=v)
            producer.flush(10)
            return values

        before = send("before")
        assert _wait(lambda: read(before), 90), "the stage processes input before the stall"
        board.start()
        assert _wait(lambda: any(r["status"] == "UP" for r in board.rows()), 30), board.rows()

        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            stalled = _wait(lambda: [r for r in board.rows() if r["status"] == "DOWN"], STALL_S - 5)
            assert stalled, f"the health board shows the stalled stage: {board.rows()}"
            time.sleep(max(0.0, STALL_S - 25))
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)

        after = send("after")
        assert _wait(lambda: read(after), 120), "the stage processes new input after the stall"
        assert _wait(lambda: any(r["status"] == "UP" for r in board.rows()), 60), board.rows()
        assert runner.is_alive()
        consumer.close()
        board.stop()
        sup.stop()
        runner.join(30)
    finally:
        broker.stop()
