"""Runtime: seq numbering, Measurement records, failure isolation and backoff (no network)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import fastavro
import pytest

from connectors.config import ConnectorSettings, LoadedConfig, ModbusDevice
from connectors.models import Phase, Quality, Quantity, Reading, SourceProtocol, TsSource
from connectors.producer import BufferedProducer, ListSink
from connectors.runtime import ConnectorRuntime, DeviceContext, DeviceStatus, poll_loop
from edream.avro_schemas import load_schema


def _dev(i: int, **kw: Any) -> ModbusDevice:
    return ModbusDevice.model_validate(
        {
            "id": f"d{i}",
            "protocol": "modbus",
            "host": "h",
            "poll_interval_s": 0.01,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.02,
            "registers": [{"address": 0, "type": "int16", "quantity": "SOC", "unit": "%"}],
            **kw,
        }
    )


def _reading(dev: str, ts: int, value: float | None = 1.0) -> Reading:
    return Reading(
        dev,
        Quantity.SOC,
        value,
        "%",
        ts,
        TsSource.POLL,
        SourceProtocol.MODBUS,
        Phase.TOTAL,
        Quality.GOOD if value is not None else Quality.BAD,
    )


def test_emit_builds_valid_measurements_with_per_device_seq() -> None:
    sink = ListSink()
    rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(id="c9"), []), sink)
    rt.emit([_reading("a", 1000), _reading("b", 1000), _reading("a", 2000, None)])
    assert [(k, r["seq"]) for k, r in sink.records] == [("a", 1), ("b", 1), ("a", 2)]
    rec = sink.records[2][1]
    assert rec["event_id"] == "c9/a/SOC/TOTAL/2000" and rec["value"] is None and rec["quality"] == "BAD"
    schema = load_schema("Measurement")
    for _, r in sink.records:  # every record is writable with the contract
        fastavro.schemaless_writer(io.BytesIO(), schema, r)


def test_failing_device_backs_off_and_does_not_stall_others() -> None:
    devs = [_dev(1), _dev(2)]
    rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(), devs), ListSink(), driver_for=lambda d: _drv)
    calls = {"d1": 0, "d2": 0}

    async def _drv(ctx: DeviceContext) -> None:
        async def poll() -> list[Reading]:
            calls[ctx.device.id] += 1
            if ctx.device.id == "d1":
                raise ConnectionError("refused")
            if calls["d2"] == 20:
                rt.stop()
            return [_reading("d2", calls["d2"])]

        await poll_loop(ctx, poll)

    async def main() -> None:
        rt.config.devices = devs
        await asyncio.wait_for(rt.run(), 10)

    asyncio.run(main())
    st = rt.status()["devices"]
    assert st["d1"]["state"] == "down" and "refused" in st["d1"]["last_error"]
    assert st["d1"]["consecutive_failures"] >= 2
    assert st["d2"]["state"] == "up" and st["d2"]["readings"] >= 19
    assert rt.seq("d2") >= 19


def test_crashing_driver_is_restarted() -> None:
    runs = []
    rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(), [_dev(1)]), ListSink(), driver_for=lambda d: _drv)

    async def _drv(ctx: DeviceContext) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")
        rt.stop()

    asyncio.run(asyncio.wait_for(rt.run(), 10))
    assert len(runs) == 3 and rt.statuses["d1"].consecutive_failures == 2


class FakeMsg:
    def __init__(self, key: bytes, value: bytes, ts: int):
        self._k, self._v, self._ts = key, value, ts

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)


class FakeProducer:
    """Stands in for librdkafka: queues messages; ``deliver(err)`` fires callbacks."""

    def __init__(self) -> None:
        self.queue: list[tuple[FakeMsg, Any]] = []
        self.sent: list[FakeMsg] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any, timestamp: int) -> None:
        self.queue.append((FakeMsg(key, value, timestamp), on_delivery))

    def deliver(self, err: Any = None) -> None:
        batch, self.queue = self.queue, []
        for msg, cb in batch:
            if err is None:
                self.sent.append(msg)
            cb(err, msg)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return len(self.queue)


def test_buffer_bound_drops_only_beyond_bound_and_redelivers_on_error() -> None:
    fake = FakeProducer()
    acks: list[int] = []
    batches: list[int] = []

    def encode_batch(records: list[dict]) -> list[bytes]:
        batches.append(len(records))
        return [str(r["ts"]).encode() for r in records]

    p = BufferedProducer({}, "t", encode_batch, max_buffered=3, on_ack=acks.append, producer=fake)
    assert p.offer_batch([("k", {"ts": i}) for i in range(2)]) == 2
    assert p.offer_batch([("k", {"ts": i}) for i in range(2, 5)]) == 1  # only room for one more
    assert p.offer_batch([("k", {"ts": 5})]) == 0 and batches == [2, 1]  # full: nothing encoded
    assert p.dropped == 3 and p.buffered == 3
    fake.deliver(err="broker down")  # every delivery fails: all re-produced, none lost
    assert p.redelivered == 3 and p.buffered == 3 and len(fake.queue) == 3
    fake.deliver()
    assert [m.value() for m in fake.sent] == [b"0", b"1", b"2"] and p.buffered == 0 and len(acks) == 3
    assert [m.key() for m in fake.sent] == [b"k"] * 3 and [m.timestamp()[1] for m in fake.sent] == [0, 1, 2]
    assert p.offer_batch([("k", {"ts": 9})]) == 1


def test_emit_batch_is_one_sink_batch_and_counts_drops_per_device() -> None:
    class TwoSlots(ListSink):
        def offer_batch(self, items):  # type: ignore[no-untyped-def]
            self.batches = getattr(self, "batches", 0) + 1
            return super().offer_batch(items[:2])

    sink = TwoSlots()
    rt = ConnectorRuntime(LoadedConfig(ConnectorSettings(id="c"), []), sink)
    sa, sb = DeviceStatus("a", "modbus"), DeviceStatus("b", "modbus")
    accepted = rt.emit_batch([([_reading("a", 1), _reading("a", 2, None)], sa), ([_reading("b", 1)], sb)])
    assert accepted == 2 and sink.batches == 1 and rt.dropped == 1
    assert (sa.readings, sa.bad_readings, sb.readings) == (2, 1, 1)
    assert [(k, r["seq"]) for k, r in sink.records] == [("a", 1), ("a", 2)]


@pytest.mark.parametrize("initial,maximum", [(0.5, 30.0), (1.0, 2.0)])
def test_backoff_grows_and_caps(initial: float, maximum: float) -> None:
    from edream.retry import Delays

    b = Delays(initial, maximum)  # the platform's one retry policy: doubling + up to 1 s jitter, capped
    delays = [b.next() for _ in range(12)]
    assert all(initial <= d <= maximum for d in delays)
    assert delays[-1] == maximum and delays[0] <= initial + 1.0
    b.reset()
    assert b.next() <= initial + 1.0
    exact = Delays(initial, maximum, jitter=False)
    assert [exact.next() for _ in range(3)] == [min(maximum, initial * 2**i) for i in range(3)]
