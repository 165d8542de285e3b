"""HTTP polling of vendor REST APIs (e.g. the SpotLink/Emotion EV charging API, seed-catalogue §3.5).

Each poll GETs every configured resource (``base_url`` + ``path``; SpotLink paths embed a JSON object, e.g.
``ev/{"vehicleID":"-LRGfW9NO0SNzKtnbxZ8"}``), maps the configured JSON paths to readings (string-typed numbers
are parsed) and takes the timestamp from the payload when configured (``ts_source=DEVICE``; SpotLink sends
Europe/Rome local time) else the poll time. A payload reading whose timestamp and value did not change since the
previous poll is not sent again (SpotLink's last charge session stays the same for hours: polled every minute, it
was re-sent every minute and, once older than the interval stage's correction horizon, dead-lettered every minute).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from connectors.config import HttpDevice, HttpResource
from connectors.mapping import document_readings
from connectors.models import Reading, SourceProtocol, TsSource, now_ms
from connectors.runtime import DeviceContext, poll_loop


def resource_url(base_url: str, path: str) -> str:
    """Join and percent-encode (JSON objects in the path become ``%7B%22...``)."""
    return base_url.rstrip("/") + "/" + quote(path.lstrip("/"), safe="/:,@")


def readings_from_document(device: HttpDevice, res: HttpResource, doc: Any, poll_ts: int) -> list[Reading]:
    """Readings for one resource's JSON document (pure)."""
    return document_readings(device, doc, res.fields, res.timestamp, poll_ts, SourceProtocol.HTTP)


def unseen(readings: list[Reading], seen: set[tuple]) -> tuple[list[Reading], set[tuple]]:
    """The readings of a poll that the previous poll (its keys: ``seen``) did not deliver, and this poll's keys:
    a payload-timestamped reading (``ts_source=DEVICE``) with the same quantity, phase, timestamp and value is the
    same reading again; poll-time readings are always new (pure)."""
    fresh: list[Reading] = []
    keys: set[tuple] = set()
    for r in readings:
        if r.ts_source == TsSource.DEVICE:
            key = (r.quantity, r.phase, r.ts, r.value)
            keys.add(key)
            if key in seen:
                continue
        fresh.append(r)
    return fresh, keys


async def run_http(ctx: DeviceContext) -> None:
    dev: HttpDevice = ctx.device
    seen: set[tuple] = set()
    async with httpx.AsyncClient(headers=dev.headers, timeout=dev.timeout_s) as client:

        async def poll_once() -> list[Reading]:
            nonlocal seen
            out: list[Reading] = []
            for res in dev.resources:
                resp = await client.get(resource_url(dev.base_url, res.path))
                resp.raise_for_status()
                out += readings_from_document(dev, res, resp.json(), now_ms())
            out, seen = unseen(out, seen)
            return out

        await poll_loop(ctx, poll_once)


# -- EV charger command interface (T80-T82) -------------------------------------------------------------------
MIN_AMPS, MAX_AMPS = 7, 64


class CommandError(RuntimeError):
    """The charger API refused or did not confirm a command; ``status_code`` is the HTTP status."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def validate_power_amps(amps: object) -> int:
    """Set-point in A: an integer 7..64 (T82). Rejects bools, floats, strings and out-of-range values."""
    if isinstance(amps, bool) or not isinstance(amps, int):
        raise ValueError(f"power set-point must be an integer number of amperes, got {amps!r}")
    if not MIN_AMPS <= amps <= MAX_AMPS:
        raise ValueError(f"power set-point {amps} A outside {MIN_AMPS}..{MAX_AMPS} A")
    return amps


class EvChargerCommands:
    """Remote start/stop and power set-point for SpotLink chargeboxes, for flexibility dispatch.

    Every call is a GET with a JSON object in the path and answers a JSON string (``"START_OK"``,
    ``"STOP_OK"``, ``"SET_OK"``); anything else raises :class:`CommandError`.
    """

    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None, timeout_s: float = 5.0):
        self.base_url = base_url
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._own = client is None

    async def _call(self, endpoint: str, params: dict[str, str], expect: str) -> str:
        path = f"{endpoint}/{json.dumps(params, separators=(',', ':'))}"
        resp = await self._client.get(resource_url(self.base_url, path))
        try:
            body = resp.json()
        except ValueError:
            body = resp.text
        if resp.status_code != 200 or body != expect:
            raise CommandError(
                f"{endpoint} {params}: HTTP {resp.status_code} {body!r} (expected {expect!r})",
                resp.status_code,
            )
        return body

    async def start(self, chargebox_id: str, socket_id: str) -> str:
        return await self._call(
            "startChargebox", {"chargeboxID": chargebox_id, "socketID": socket_id}, "START_OK"
        )

    async def stop(self, chargebox_id: str, socket_id: str) -> str:
        return await self._call(
            "stopChargebox", {"chargeboxID": chargebox_id, "socketID": socket_id}, "STOP_OK"
        )

    async def set_power(self, chargebox_id: str, amps: int) -> str:
        amps = validate_power_amps(amps)
        return await self._call("setPower", {"chargeboxID": chargebox_id, "powerValue": str(amps)}, "SET_OK")

    async def aclose(self) -> None:
        if self._own:
            await self._client.aclose()
