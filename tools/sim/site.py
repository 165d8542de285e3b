"""A small simulated site on localhost for ``edream connectors sim`` / ``make run``: SMX gateways on an MQTT
broker (one per prosumer), KiWi Modbus gateways, a micro-grid monitor (OPC UA) and the SpotLink EV API.

Default ports match ``connectors/config/site-terni-sim.yaml``: MQTT 1883, Modbus 5020, OPC UA 4840, HTTP 8089.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from tools.sim.ev_api import EvApiServer
from tools.sim.modbus_fleet import ModbusFleet
from tools.sim.mqtt_broker import MqttBroker
from tools.sim.opcua_server import FeederServer
from tools.sim.smx_publisher import SmxPublisherFleet


@dataclass
class SitePorts:
    mqtt: int = 1883
    modbus: int = 5020
    opcua: int = 4840
    http: int = 8089


@dataclass
class SimulatedSite:
    prosumers: int = 50
    modbus_devices: int = 5
    interval_s: float = 5.0
    ports: SitePorts = field(default_factory=SitePorts)
    host: str = "127.0.0.1"
    _parts: dict[str, Any] = field(default_factory=dict)

    async def start(self) -> SimulatedSite:
        p = self.ports
        self._parts["mqtt"] = MqttBroker(self.host, p.mqtt).start()
        self._parts["smx"] = SmxPublisherFleet(self.host, p.mqtt, self.prosumers, self.interval_s).start()
        self._parts["modbus"] = await ModbusFleet(
            self.modbus_devices, host=self.host, ports=[p.modbus]
        ).start()
        self._parts["opcua"] = await FeederServer(self.host, p.opcua, self.prosumers, self.interval_s).start()
        self._parts["http"] = EvApiServer(self.host, p.http, live=True).start()
        return self

    def describe(self) -> dict[str, Any]:
        p = self.ports
        return {
            "prosumers": self.prosumers,
            "mqtt": f"{self.host}:{p.mqtt} topics <gateway>/SMX/",
            "modbus": f"{self.host}:{p.modbus} units 1..{self.modbus_devices}",
            "opcua": self._parts["opcua"].endpoint if "opcua" in self._parts else None,
            "http": self._parts["http"].base_url if "http" in self._parts else None,
        }

    async def stop(self) -> None:
        if "smx" in self._parts:
            self._parts.pop("smx").stop()
        if "modbus" in self._parts:
            await self._parts.pop("modbus").stop()
        if "opcua" in self._parts:
            await self._parts.pop("opcua").stop()
        if "http" in self._parts:
            self._parts.pop("http").stop()
        if "mqtt" in self._parts:
            await asyncio.to_thread(self._parts.pop("mqtt").stop)
