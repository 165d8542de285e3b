"""A local SpotLink/Emotion EV charging API (seed-catalogue §3.5, T78-T83) serving the spec's example
responses: GET ``/public/api/<endpoint>/`` or ``/public/api/<endpoint>/{json params}``.

Control calls answer ``"START_OK"`` / ``"STOP_OK"`` / ``"SET_OK"``, are recorded in ``commands`` and change
the simulated charger state: ``current_a`` (chargeboxID -> set-point, A) and ``charging`` (chargeboxID ->
started/stopped); ``setPower`` outside 7..64 A (or non-integer) or without a chargeboxID answers HTTP 400
(error responses are not in the spec).
"""

from __future__ import annotations

import copy
import json
import socket
import threading
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

EXAMPLES = Path(__file__).parent / "spec_examples" / "spotlink.json"
ROME = ZoneInfo("Europe/Rome")  # the API's local time


@cache
def examples() -> dict[str, Any]:
    return json.loads(EXAMPLES.read_text())


class EvApiState:
    """``live``: the vehicle's answer carries the current time (a field site); else the spec's example time."""

    def __init__(self, live: bool = False) -> None:
        self.live = live
        self.data = copy.deepcopy(examples())
        if (
            live
        ):  # the charge history (2019) moved so that its last charge ended an hour before the site started
            _shift_recharges(
                self.data["historyCharges"]["recharges"], datetime.now(ROME) - timedelta(hours=1)
            )
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.current_a: dict[str, int] = {}
        self.charging: dict[str, bool] = {}
        self.requests = 0


def _shift_recharges(recharges: list[dict[str, Any]], last_stop: datetime) -> None:
    """Move every charge's start/stop (Europe/Rome local time strings) by one offset: the latest stop becomes
    ``last_stop``."""
    fmt = "%Y-%m-%d %H:%M:%S"
    stops = [datetime.strptime(r["dataStop"], fmt) for r in recharges]
    if not stops:
        return
    offset = last_stop.replace(tzinfo=None) - max(stops)
    for r in recharges:
        for k in ("dataStart", "dataStop"):
            r[k] = (datetime.strptime(r[k], fmt) + offset).strftime(fmt)


def _params(raw: str) -> dict[str, Any] | None:
    raw = unquote(raw).strip()
    if not raw or raw.upper() == "NULL":
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("parameter must be a JSON object")
    return value


def make_app(state: EvApiState) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        state.requests += 1
        name = request.path_params["endpoint"]
        try:
            params = _params(request.path_params.get("params", ""))
        except (ValueError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        d = state.data
        if name == "chargeboxes":
            boxes = d["chargeboxes"]
            if params and "chargeboxID" in params:
                boxes = [b for b in boxes if b["chargeboxID"] == params["chargeboxID"]]
                return JSONResponse(boxes[0] if boxes else {"error": "not found"}, 200 if boxes else 404)
            return JSONResponse(boxes)
        if name == "historyCharges":
            return JSONResponse(d["historyCharges"])
        if name == "ev":
            evs = d["ev"]
            if state.live:  # the spec's example answer (2019) stamped with the current Europe/Rome local time
                now = datetime.now(ROME).strftime("%Y-%m-%d %H:%M:%S")
                evs = [{**ev, "timestamp": now} if "timestamp" in ev else ev for ev in evs]
            # the spec's example answers vehicleID "1" whatever id is asked (seed §16 #9): reproduced here
            return JSONResponse(evs[0] if params else evs)
        if name in ("startChargebox", "stopChargebox"):
            if not params or "chargeboxID" not in params or "socketID" not in params:
                return JSONResponse({"error": "chargeboxID and socketID required"}, 400)
            state.commands.append((name, params))
            state.charging[params["chargeboxID"]] = name == "startChargebox"
            return JSONResponse("START_OK" if name == "startChargebox" else "STOP_OK")
        if name == "setPower":
            pv = (params or {}).get("powerValue")
            if not (isinstance(pv, str) and pv.isdigit() and 7 <= int(pv) <= 64):
                return JSONResponse({"error": "powerValue must be an integer 7..64 (A)"}, 400)
            if not params or "chargeboxID" not in params:
                return JSONResponse({"error": "chargeboxID required"}, 400)
            state.commands.append((name, params))
            state.current_a[params["chargeboxID"]] = int(pv)
            return JSONResponse("SET_OK")
        return JSONResponse({"error": f"unknown endpoint {name}"}, 404)

    routes = [
        Route("/public/api/{endpoint}/", endpoint),
        Route("/public/api/{endpoint}/{params:path}", endpoint),
    ]
    return Starlette(routes=routes)


class EvApiServer:
    """Runs the API with uvicorn on a thread; ``base_url`` ends with ``/public/api``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, live: bool = False):
        self.state = EvApiState(live)
        self.sock = socket.socket()
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()
        self.server = uvicorn.Server(
            uvicorn.Config(make_app(self.state), log_level="warning", lifespan="off")
        )
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/public/api"

    def start(self) -> EvApiServer:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        while not self.server.started:
            threading.Event().wait(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.sock.close()
