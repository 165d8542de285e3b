"""Which driver runs a device config, and the sessions shared between devices (one MQTT client per broker)."""

from __future__ import annotations

from typing import Any

from connectors.runtime import ConnectorRuntime, DeviceContext, Driver


def driver_for(device: Any) -> Driver:
    if device.protocol == "modbus":
        from connectors.modbus import run_modbus

        return run_modbus
    if device.protocol == "opcua":
        from connectors.opcua import run_opcua

        return run_opcua
    if device.protocol == "mqtt":
        from connectors.mqtt import run_mqtt

        return run_mqtt
    if device.protocol == "http":
        from connectors.http_poll import run_http

        return run_http
    raise ValueError(f"no driver for protocol {device.protocol!r}")


async def start_shared(runtime: ConnectorRuntime, contexts: list[DeviceContext]) -> list[Any]:
    """Start the shared sessions for ``contexts``; return objects with ``async close()``."""
    mqtt_ctx = [c for c in contexts if c.device.protocol == "mqtt"]
    if not mqtt_ctx:
        return []
    from connectors.mqtt import start_sessions

    sessions = start_sessions(runtime, mqtt_ctx)
    return list(sessions.values())
