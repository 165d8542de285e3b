"""A fleet of simulated Modbus/TCP meters (pymodbus server): unit ids 1..N (up to 247 per TCP port), register
map taken from a connector profile (default ``kiwi-fruit`` in ``connectors/config``), values computed at read
time from SimBench-driven households (or any ``values(unit_id, t_ms)`` function, for tests)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from connectors.config import ModbusPoint, load_config
from connectors.modbus_codec import Function, encode
from connectors.models import now_ms
from connectors.values import normalise_unit
from edream.paths import CONNECTOR_CONFIG_DIR
from tools.sim.devices import Values, household_values
from tools.sim.profiles import Household

UNITS_PER_PORT = 247
ValuesFn = Callable[[int, int], Values]


def profile_points(profile: str = "kiwi-fruit") -> list[ModbusPoint]:
    cfg = load_config(CONNECTOR_CONFIG_DIR, include_disabled=True)
    _, raw = cfg.profiles[profile]
    return [ModbusPoint.model_validate(p) for p in raw["registers"]]


def registers_for(points: list[ModbusPoint], values: Values, fn: Function) -> dict[int, list[int]]:
    """address -> registers for every point of function ``fn`` whose (quantity, phase) has a value."""
    out: dict[int, list[int]] = {}
    for p in points:
        if p.function is not fn or (p.quantity, p.phase) not in values:
            continue
        _, factor = normalise_unit(p.unit)
        raw = (values[(p.quantity, p.phase)] / factor - p.offset) / p.scale
        out[p.address] = encode(raw, p.type, p.word_order, p.byte_order)
    return out


def household_source(n: int, seed: int = 0) -> ValuesFn:
    homes = {i: Household.make(i, seed) for i in range(1, n + 1)}
    return lambda unit, t: household_values(homes[unit], t)


class ModbusFleet:
    """``await start()`` serves ``n_devices`` meters; ``endpoints`` lists (host, port, unit_id)."""

    def __init__(
        self,
        n_devices: int,
        points: list[ModbusPoint] | None = None,
        values: ValuesFn | None = None,
        host: str = "127.0.0.1",
        ports: list[int] | None = None,
        seed: int = 0,
    ):
        self.points = points or profile_points()
        self.values = values or household_source(n_devices, seed)
        self.host = host
        self.n = n_devices
        n_ports = (n_devices + UNITS_PER_PORT - 1) // UNITS_PER_PORT
        self.ports = ports or [0] * n_ports
        self.servers: list[ModbusTcpServer] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self.reads = 0
        self.fail_units: set[int] = set()  # units that answer with an exception (tests)
        self.size = max(p.address + p.count for p in self.points) + 1

    def _device(self, unit: int) -> SimDevice:
        """Device number ``unit`` (1..N across the fleet) served as unit id ``(unit - 1) % 247 + 1``."""
        sizes = {
            fn: max([p.address + p.count for p in self.points if p.function is fn], default=1)
            for fn in Function
        }

        async def action(
            fc: int, start: int, address: int, count: int, regs: list[int], set_values: Any
        ) -> Any:
            from pymodbus.constants import ExcCodes

            if unit in self.fail_units:
                return ExcCodes.DEVICE_FAILURE
            if fc not in (3, 4):
                return None
            self.reads += 1
            fn = Function.HOLDING if fc == 3 else Function.INPUT
            for addr, words in registers_for(self.points, self.values(unit, now_ms()), fn).items():
                regs[addr - start : addr - start + len(words)] = words
            return None

        def block(fn: Function) -> list[SimData]:
            return [SimData(0, count=sizes[fn], values=0, datatype=SimType.UINT16)]

        bits = [SimData(0, count=1, values=False, datatype=SimType.BITS)]
        return SimDevice(
            id=(unit - 1) % UNITS_PER_PORT + 1,
            simdata=(bits, bits, block(Function.HOLDING), block(Function.INPUT)),
            action=action,
        )

    @property
    def endpoints(self) -> list[tuple[str, int, int]]:
        out = []
        for i in range(1, self.n + 1):
            srv = self.servers[(i - 1) // UNITS_PER_PORT]
            out.append((self.host, self._port(srv), (i - 1) % UNITS_PER_PORT + 1))
        return out

    @staticmethod
    def _port(srv: ModbusTcpServer) -> int:
        return srv.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def start(self) -> ModbusFleet:
        for k, port in enumerate(self.ports):
            units = range(k * UNITS_PER_PORT + 1, min(self.n, (k + 1) * UNITS_PER_PORT) + 1)
            devices = [self._device(u) for u in units]  # unit ids restart at 1 on every port
            srv = ModbusTcpServer(devices, address=(self.host, port))
            await srv.listen()
            self.servers.append(srv)
        return self

    async def stop(self) -> None:
        for srv in self.servers:
            with contextlib.suppress(Exception):
                await srv.shutdown()
        self.servers.clear()
