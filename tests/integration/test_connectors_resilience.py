"""Resilience: the Kafka broker is killed and restarted while devices keep producing; a device is down the whole
time. Readings produced during the outage are buffered (bounded) and all delivered when the broker returns; the
connector recovers without restart; the dead device never stalls the others.

The broker keeps its log in the object store, as the embedded stack's does, and comes back on it with its topics.
(A broker that came back empty acknowledges produce requests for the topic it no longer has and keeps none of
those records: the memory-storage Tansu answers a produce to an unknown topic with offsets and drops it.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.app import Connector
from connectors.testing import consume
from edream.embedded.broker import EmbeddedBroker
from edream.embedded.object_store import EmbeddedObjectStore
from edream.embedded.process import free_port
from edream.settings import Settings
from tools.sim.modbus_fleet import ModbusFleet

pytestmark = pytest.mark.integration
TOPIC = "conn.resilience"


def _create_topic(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        fut.result(15)


async def _until(cond, what: str, limit_s: float = 60) -> None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(limit_s):
            while not cond():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gave up waiting for: {what}") from None


def test_broker_outage_loses_no_buffered_reading(tmp_path: Path) -> None:
    store = EmbeddedObjectStore(tmp_path / "s3").start()
    broker = EmbeddedBroker(tmp_path / "b1", object_store=store)
    broker.start()
    bootstrap = broker.bootstrap
    _create_topic(bootstrap)
    settings = Settings(kafka_bootstrap_servers=bootstrap, edream_data_dir=tmp_path)

    async def scenario() -> tuple[Connector, dict[str, int], list[dict]]:
        nonlocal broker
        fleet = await ModbusFleet(3).start()
        dead_port = free_port()
        lines = [f"connector: {{id: it-res, topic: {TOPIC}, linger_ms: 5, max_buffered: 100000}}", "devices:"]
        for i, (host, port, unit) in enumerate(fleet.endpoints + [("127.0.0.1", dead_port, 1)], start=1):
            lines.append(
                f"  - {{id: m{i}, protocol: modbus, host: {host}, port: {port}, unit_id: {unit},"
                " poll_interval_s: 0.1, timeout_s: 0.5, backoff_initial_s: 0.1, backoff_max_s: 0.5,"
                " registers: [{address: 0, type: float32, quantity: P_ACTIVE, unit: W},"
                " {address: 6, type: uint16, scale: 0.01, quantity: FREQUENCY, unit: Hz}]}"
            )
        cfg = tmp_path / "cfg"
        cfg.mkdir()
        (cfg / "c.yaml").write_text("\n".join(lines) + "\n")
        conn = Connector(
            cfg,
            settings,
            bootstrap,
            **{
                "reconnect.backoff.max.ms": 500,
                "topic.metadata.refresh.interval.ms": 1000,
                "allow.auto.create.topics": False,
            },
        )
        rt, prod = conn.runtime, conn.producer
        async with conn:
            await _until(lambda: rt.seq("m1") >= 20 and prod.buffered == 0, "first readings acknowledged")
            broker.stop()  # kill the broker
            at_kill = {d: rt.seq(d) for d in ("m1", "m2", "m3")}
            await _until(lambda: all(rt.seq(d) >= at_kill[d] + 40 for d in at_kill), "readings during outage")
            assert prod.buffered >= 3 * 40  # buffered, not acknowledged, not dropped
            assert prod.dropped == 0
            broker = EmbeddedBroker(
                tmp_path / "b2", port=int(bootstrap.rsplit(":", 1)[1]), object_store=store
            )
            broker.start()  # on the same object store: the topic and what it acknowledged are still there
            await _until(lambda: prod.buffered == 0, "buffer drained after broker restart", 90)
            st = rt.status()["devices"]
        await fleet.stop()
        return (
            conn,
            at_kill,
            (
                st,
                await asyncio.to_thread(
                    consume,
                    bootstrap,
                    TOPIC,
                    lambda rs: all(
                        max((r["seq"] for r in rs if r["device_id"] == d), default=0) >= rt.seq(d)
                        for d in at_kill
                    ),
                ),
            ),
        )

    try:
        conn, at_kill, (status, records) = asyncio.run(scenario())
    finally:
        broker.stop()
        store.stop()
    assert conn.producer.dropped == 0 and conn.runtime.dropped == 0
    for dev in at_kill:
        got = {r["seq"] for r in records if r["device_id"] == dev}
        final = conn.runtime.seq(dev)
        # every reading, before the outage, buffered during it and after it, is on the topic
        assert set(range(1, final + 1)) <= got, f"{dev}: missing {set(range(1, final + 1)) - got}"
    assert status["m4"]["state"] == "down" and status["m4"]["consecutive_failures"] >= 3
    assert all(status[d]["state"] == "up" for d in at_kill)
