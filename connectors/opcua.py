"""OPC UA driver (asyncua client): data-change subscriptions on configured node ids.

Values arrive as notifications; the OPC UA ``SourceTimestamp`` is the event time (``ts_source=DEVICE``), else
the receive time (POLL). A bad status code flags the reading BAD. When the connection is lost (server restart,
network) the driver reports the device down, backs off, reconnects and re-creates the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

from asyncua import Client, ua

from connectors.config import OpcuaDevice, OpcuaNode
from connectors.mapping import make_reading
from connectors.models import Quality, Reading, SourceProtocol, TsSource, now_ms
from connectors.runtime import DeviceContext


def _ms(dt: datetime | None) -> int | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def reading_from_datavalue(
    device: OpcuaDevice, node: OpcuaNode, dv: ua.DataValue | None, value: Any, recv_ts: int
) -> Reading:
    """Map one notification (pure)."""
    src_ts = _ms(dv.SourceTimestamp) if dv is not None else None
    ts, src = (src_ts, TsSource.DEVICE) if src_ts else (recv_ts, TsSource.POLL)
    r = make_reading(device, node, value, ts, src, SourceProtocol.OPCUA)
    if dv is not None and dv.StatusCode is not None and not dv.StatusCode.is_good():
        r = r._replace(quality=Quality.BAD)
    return r


class _Handler:
    def __init__(self, ctx: DeviceContext, by_node: dict[str, OpcuaNode]):
        self.ctx = ctx
        self.by_node = by_node

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        point = self.by_node.get(node.nodeid.to_string())
        if point is None:
            return
        dv = getattr(getattr(data, "monitored_item", None), "Value", None)
        self.ctx.emit([reading_from_datavalue(self.ctx.device, point, dv, val, now_ms())])

    def status_change_notification(self, status: Any) -> None:
        self.ctx.failed(ConnectionError(f"subscription status {status}"))


async def _configure(client: Client, dev: OpcuaDevice) -> None:
    sec = dev.security
    if sec.policy != "None":
        parts = [sec.policy, sec.mode, str(sec.certificate), str(sec.private_key)]
        if sec.server_certificate:
            parts.append(str(sec.server_certificate))
        await client.set_security_string(",".join(parts))
    if sec.username:
        client.set_user(sec.username)
    if sec.password:
        client.set_password(sec.password)


async def run_opcua(ctx: DeviceContext) -> None:
    """Connect, subscribe, watch the connection; on loss back off and start over (re-subscribing)."""
    dev: OpcuaDevice = ctx.device
    while True:
        client = Client(dev.endpoint, timeout=dev.timeout_s)
        try:
            await _configure(client, dev)
            await client.connect()
            try:
                nodes = [client.get_node(n.node_id) for n in dev.nodes]
                by_node = {n.nodeid.to_string(): p for n, p in zip(nodes, dev.nodes, strict=True)}
                sub = await client.create_subscription(dev.publishing_interval_ms, _Handler(ctx, by_node))
                await sub.subscribe_data_change(nodes)
                ctx.ok()
                while True:
                    await asyncio.sleep(1.0)
                    await client.check_connection()
            finally:
                with contextlib.suppress(Exception):  # the connection may already be gone
                    await asyncio.wait_for(client.disconnect(), 2)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, retried with backoff
            await asyncio.sleep(ctx.failed(exc))
