"""Modbus/TCP polling driver (pymodbus async client).

Every poll reads the device's register map in as few requests as :func:`plan_reads` allows, decodes each point
(:mod:`connectors.modbus_codec`) and maps it to a reading stamped with the poll time (Modbus carries no
timestamps: ``ts_source=POLL``). A point whose registers decode to NaN/inf or out of range is flagged BAD.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymodbus.client import AsyncModbusTcpClient

from connectors.config import ModbusDevice, ModbusPoint
from connectors.mapping import make_reading
from connectors.modbus_codec import (
    DecodeError,
    Function,
    ReadBlock,
    RegisterSpan,
    decode,
    plan_reads,
    to_engineering,
)
from connectors.models import Reading, SourceProtocol, TsSource, now_ms
from connectors.runtime import DeviceContext, poll_loop


class ModbusReadError(IOError):
    """The device answered a read with an exception response."""


def plan_for(device: ModbusDevice) -> list[ReadBlock]:
    spans = [RegisterSpan(str(i), p.function, p.address, p.count) for i, p in enumerate(device.registers)]
    return plan_reads(spans, max_gap=device.max_gap)


def readings_from_blocks(
    device: ModbusDevice, blocks: Sequence[ReadBlock], data: Sequence[Sequence[int]], ts: int
) -> list[Reading]:
    """Decode every point from the registers each block returned (pure; used by the driver and tests)."""
    out: list[Reading] = []
    for block, regs in zip(blocks, data, strict=True):
        for span, start in block.members:
            point: ModbusPoint = device.registers[int(span.key)]
            raw: float | None
            try:
                raw = to_engineering(
                    decode(block.slice(regs, span, start), point.type, point.word_order, point.byte_order)
                )
            except DecodeError:
                raw = None
            # scale/offset are applied by make_reading; to_engineering only screens NaN/inf here
            out.append(make_reading(device, point, raw, ts, TsSource.POLL, SourceProtocol.MODBUS))
    return out


class ModbusPoller:
    def __init__(self, device: ModbusDevice):
        self.device = device
        self.blocks = plan_for(device)
        self.client: AsyncModbusTcpClient | None = None

    async def _connected(self) -> AsyncModbusTcpClient:
        if self.client is None or not self.client.connected:
            if self.client is not None:
                self.client.close()
            d = self.device
            self.client = AsyncModbusTcpClient(
                d.host, port=d.port, timeout=d.timeout_s, retries=0, reconnect_delay=0
            )
            if not await self.client.connect():
                raise ConnectionError(f"cannot connect to {d.host}:{d.port}")
        return self.client

    async def poll_once(self) -> list[Reading]:
        try:
            client = await self._connected()
            ts = now_ms()
            data = []
            for b in self.blocks:
                fn = (
                    client.read_holding_registers
                    if b.function is Function.HOLDING
                    else client.read_input_registers
                )
                rr = await fn(b.address, count=b.count, device_id=self.device.unit_id)
                if rr.isError():
                    raise ModbusReadError(f"{b.function.value} {b.address}+{b.count}: {rr}")
                data.append(rr.registers)
        except Exception:
            self.close()
            raise
        return readings_from_blocks(self.device, self.blocks, data, ts)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


async def run_modbus(ctx: DeviceContext) -> None:
    poller = ModbusPoller(ctx.device)
    try:
        await poll_loop(ctx, poller.poll_once)
    finally:
        poller.close()
