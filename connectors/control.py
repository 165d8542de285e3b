"""Executing a planned command :class:`~connectors.commands.Step` on a device (the I/O half of commands).

A controller's ``execute`` returns the device's answer; it raises :class:`Refused` when the device answered
and said no (retrying will not help: the command FAILS at once) and any other exception when the device could
not be reached or answered garbage (retried with backoff until the command's ``valid_until``).
"""

from __future__ import annotations

import struct
from typing import Any, Protocol

import httpx
from pymodbus.client import AsyncModbusTcpClient

from connectors.commands import Step
from connectors.config import HttpDevice, ModbusControl, ModbusDevice
from connectors.http_poll import CommandError, EvChargerCommands
from connectors.modbus_codec import encode
from connectors.models import DeviceAction

#: HTTP statuses worth retrying: server errors, request timeout, too many requests
RETRYABLE_HTTP = frozenset({408, 429})
#: Modbus exception codes that mean "never": illegal function, illegal data address, illegal data value
REFUSING_MODBUS = frozenset({1, 2, 3})


class Refused(RuntimeError):
    """The device answered and refused the command."""


class Controller(Protocol):
    async def execute(self, step: Step) -> str: ...

    async def aclose(self) -> None: ...


class SpotLinkController:
    """SpotLink chargeboxes of one HTTP device: SET_CURRENT_A -> setPower, START/STOP -> start/stopChargebox."""

    def __init__(self, device: HttpDevice):
        assert device.controls is not None
        self.device, self.sockets = device, device.controls.chargeboxes
        self._client = httpx.AsyncClient(headers=device.headers, timeout=device.timeout_s)
        self.api = EvChargerCommands(device.base_url, self._client)

    async def execute(self, step: Step) -> str:
        try:
            if step.action is DeviceAction.SET_CURRENT_A:
                assert step.amps is not None
                return await self.api.set_power(step.target_id, step.amps)
            socket = self.sockets[step.target_id]
            if step.action is DeviceAction.START:
                return await self.api.start(step.target_id, socket)
            return await self.api.stop(step.target_id, socket)
        except CommandError as exc:
            code = exc.status_code
            if code is not None and code < 500 and code not in RETRYABLE_HTTP:
                raise Refused(str(exc)) from exc
            raise

    async def aclose(self) -> None:
        await self._client.aclose()


def register_values(ctl: ModbusControl, value: float) -> list[int]:
    """Registers to write for engineering ``value`` (raw = value / scale, encoded as ``ctl.type``)."""
    try:
        return encode(value / ctl.scale, ctl.type, ctl.word_order, ctl.byte_order)
    except struct.error as exc:
        raise Refused(f"{value} / scale {ctl.scale} does not fit a {ctl.type} register: {exc}") from None


class ModbusController:
    """Writes the device's ``controls`` registers; one short TCP connection per command."""

    def __init__(self, device: ModbusDevice):
        self.device = device

    async def execute(self, step: Step) -> str:
        d = self.device
        ctl = d.controls[step.action]
        value = float(step.amps) if step.action is DeviceAction.SET_CURRENT_A else ctl.value
        assert value is not None
        regs = register_values(ctl, value)
        client = AsyncModbusTcpClient(d.host, port=d.port, timeout=d.timeout_s, retries=0, reconnect_delay=0)
        try:
            if not await client.connect():
                raise ConnectionError(f"cannot connect to {d.host}:{d.port}")
            if len(regs) == 1:
                rr = await client.write_register(ctl.address, regs[0], device_id=d.unit_id)
            else:
                rr = await client.write_registers(ctl.address, regs, device_id=d.unit_id)
        finally:
            client.close()
        if rr.isError():
            msg = f"write {regs} to holding register {ctl.address} (unit {d.unit_id}): {rr}"
            if getattr(rr, "exception_code", None) in REFUSING_MODBUS:
                raise Refused(msg)
            raise OSError(msg)
        return f"wrote {regs} to holding register {ctl.address} (unit {d.unit_id})"

    async def aclose(self) -> None:
        return None


def controller_for(device: Any) -> Controller | None:
    """The controller of a device config with ``controls``; None for devices without control."""
    if device.protocol == "http" and device.controls is not None:
        return SpotLinkController(device)
    if device.protocol == "modbus" and device.controls:
        return ModbusController(device)
    return None
