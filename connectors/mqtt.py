"""MQTT driver (paho-mqtt): one client per broker shared by every device config on it, QoS 1 subscriptions.

A device config subscribes a topic filter (``+``/``#`` allowed; ``device_id_level`` takes the device id from a
topic level, so one config can serve a fleet) and maps payloads either with the SMX parser (``format: smx``)
or with JSON paths (``format: json``). The client keeps a persistent session (``clean_session=False``, fixed
client id, one per shard) so QoS 1 messages published while the connector is away are delivered when it
reconnects. Messages are parsed on paho's network thread and handed to the event loop in batches. With
``--shard i/N`` a fleet config keeps only the messages of the device ids its shard owns (:mod:`connectors.shard`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors import smx
from connectors.config import MqttDevice
from connectors.mapping import document_readings
from connectors.models import Reading, SourceProtocol, now_ms
from connectors.runtime import ConnectorRuntime, DeviceContext, DeviceStatus
from connectors.shard import is_fleet


class PayloadError(ValueError):
    """A message that cannot be mapped (not JSON, wrong shape)."""


def device_id_for(device: MqttDevice, topic: str) -> str:
    if device.device_id_level is None:
        return device.id
    return topic.split("/")[device.device_id_level]


def readings_from_message(device: MqttDevice, topic: str, payload: bytes, poll_ts: int) -> list[Reading]:
    """Map one MQTT message to readings (pure). Raises PayloadError on undecodable payloads."""
    dev_id = device_id_for(device, topic)
    if device.format == "smx":
        try:
            only = smx.MAPPED_NAMES if device.smx_names is None else frozenset(device.smx_names)
            parsed = smx.parse_payload(payload, only)
        except smx.SmxPayloadError as exc:
            raise PayloadError(str(exc)) from exc
        return smx.to_readings(parsed, dev_id, poll_ts, device.prosumer_id, device.site_id, device.smx_names)
    try:
        doc = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from exc
    return document_readings(
        device, doc, device.fields, device.timestamp, poll_ts, SourceProtocol.MQTT, dev_id
    )


class MqttSession:
    """One paho client for all device configs on one broker."""

    def __init__(
        self,
        runtime: ConnectorRuntime,
        host: str,
        port: int,
        username: str | None,
        password: str | None,
        client_id: str,
    ):
        self.runtime = runtime
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.exact: dict[str, list[DeviceContext]] = {}
        self.wild: list[tuple[str, DeviceContext]] = []
        self._pending: deque[tuple[DeviceContext, list[Reading] | Exception]] = deque()
        self._scheduled = False
        self._lock = threading.Lock()
        self.connected = False
        self.closing = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)

    def attach(self, ctx: DeviceContext) -> None:
        topic = ctx.device.topic
        if "+" in topic or "#" in topic:
            self.wild.append((topic, ctx))
        else:
            self.exact.setdefault(topic, []).append(ctx)
        if self.connected:
            self.client.subscribe(topic, ctx.device.qos)

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    async def close(self) -> None:
        self.closing = True
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    # -- paho thread -----------------------------------------------------------------------------------------
    def _contexts(self) -> list[DeviceContext]:
        return [c for cs in self.exact.values() for c in cs] + [c for _, c in self.wild]

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._post_all(ConnectionError(f"MQTT connect refused: {reason}"))
            return
        self.connected = True
        for ctx in self._contexts():
            self._post(ctx, [])  # connected: the device is reachable (empty batch = just "up")
        subs = {t: cs[0].device.qos for t, cs in self.exact.items()}
        subs.update({t: c.device.qos for t, c in self.wild})
        if subs:
            client.subscribe(list(subs.items()))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected = False
        if self.closing:
            return
        self._post_all(ConnectionError(f"MQTT disconnected from {self.host}:{self.port}: {reason}"))

    def _post_all(self, exc: Exception) -> None:
        for ctx in self._contexts():
            self._post(ctx, exc)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        targets = list(self.exact.get(topic, ()))
        targets += [c for f, c in self.wild if mqtt.topic_matches_sub(f, topic)]
        ts = now_ms()
        shard = self.runtime.shard
        for ctx in targets:
            try:
                if is_fleet(ctx.device) and not shard.owns(device_id_for(ctx.device, topic)):
                    continue  # another shard's device
                self._post(ctx, readings_from_message(ctx.device, topic, msg.payload, ts))
            except Exception as exc:  # noqa: BLE001 - a garbage payload is reported, never fatal
                self._post(ctx, exc)

    def _post(self, ctx: DeviceContext, item: list[Reading] | Exception) -> None:
        with self._lock:
            self._pending.append((ctx, item))
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    # -- event loop ------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        batch: list[tuple[list[Reading], DeviceStatus]] = []
        for ctx, item in items:
            if isinstance(item, Exception):
                if isinstance(item, ConnectionError):
                    ctx.failed(item)
                else:
                    ctx.bad_payload(item)
            else:
                ctx.ok()
                batch.append((item, ctx.status))
        self.runtime.emit_batch(batch)  # every message of this drain in one sink batch


def session_key(d: MqttDevice) -> tuple[str, int, str | None]:
    return (d.broker_host, d.broker_port, d.username)


def start_sessions(runtime: ConnectorRuntime, contexts: list[DeviceContext]) -> dict[Any, MqttSession]:
    """One session per broker (host, port, user); attach every context, then connect."""
    sessions: dict[Any, MqttSession] = {}
    for ctx in contexts:
        d = ctx.device
        key = session_key(d)
        if key not in sessions:
            cid = (
                f"{runtime.connector_id}{runtime.shard.suffix}-mqtt-{len(sessions)}"  # one session per shard
            )
            sessions[key] = MqttSession(runtime, d.broker_host, d.broker_port, d.username, d.password, cid)
        sessions[key].attach(ctx)
    for s in sessions.values():
        s.start()
    return sessions


async def run_mqtt(ctx: DeviceContext) -> None:
    """The shared session delivers this device's messages; the task only keeps the device alive."""
    await asyncio.Event().wait()
