"""A simulated micro-grid monitor (asyncua server): feeder variables updated every ``interval_s`` from the
SimBench-driven households, with source timestamps. Node ids are string ids in the ``urn:edream:sim``
namespace (index 2 on a fresh server): ``ns=2;s=Feeder1.P`` (kW), ``ns=2;s=Feeder1.Frequency`` (Hz), ..."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua

from connectors.models import Phase, Quantity, now_ms
from edream.embedded.process import free_port
from tools.sim.devices import household_values
from tools.sim.profiles import Household

NAMESPACE = "urn:edream:sim"


class FeederServer:
    """``await start()``; :meth:`write` sets a value (with source timestamp) for tests."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_households: int = 50,
        interval_s: float = 5.0,
        feeders: int = 1,
    ):
        self.host, self.port = host, port or free_port(host)
        self.interval_s = interval_s
        self.homes = [Household.make(i) for i in range(n_households)]
        self.feeders = feeders
        self.server: Server | None = None
        self.vars: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/edream/"

    async def start(self, simulate: bool = True) -> FeederServer:
        srv = Server()
        await srv.init()
        srv.set_endpoint(self.endpoint)
        srv.set_server_name("edream micro-grid monitor (simulated)")
        srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await srv.register_namespace(NAMESPACE)
        objects = srv.nodes.objects
        for f in range(1, self.feeders + 1):
            obj = await objects.add_object(ua.NodeId(f"Feeder{f}", idx), f"Feeder{f}")
            for name, initial in (("P", 0.0), ("Q", 0.0), ("Frequency", 50.0), ("VoltageL1", 230.0)):
                nid = f"Feeder{f}.{name}"
                self.vars[nid] = await obj.add_variable(
                    ua.NodeId(nid, idx), name, initial, ua.VariantType.Double
                )
        await srv.start()
        self.server = srv
        if simulate:
            self._task = asyncio.create_task(self._simulate())
        return self

    async def write(
        self, name: str, value: float, ts: datetime | None = None, status: ua.StatusCode | None = None
    ) -> None:
        dv = ua.DataValue(
            ua.Variant(value, ua.VariantType.Double),
            StatusCode=status or ua.StatusCode(),
            SourceTimestamp=ts or datetime.now(UTC),
            ServerTimestamp=datetime.now(UTC),
        )
        await self.vars[name].write_value(dv)

    async def _simulate(self) -> None:
        while True:
            t = now_ms()
            vals = [household_values(h, t) for h in self.homes]
            for f in range(1, self.feeders + 1):
                await self.write(
                    f"Feeder{f}.P", sum(v[(Quantity.P_ACTIVE, Phase.TOTAL)] for v in vals) / 1000
                )
                await self.write(
                    f"Feeder{f}.Q", sum(v[(Quantity.Q_REACTIVE, Phase.TOTAL)] for v in vals) / 1000
                )
                await self.write(f"Feeder{f}.Frequency", vals[0][(Quantity.FREQUENCY, Phase.TOTAL)])
                await self.write(f"Feeder{f}.VoltageL1", vals[0][(Quantity.VOLTAGE_LN, Phase.L1)])
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.server is not None:
            await self.server.stop()
            self.server = None
