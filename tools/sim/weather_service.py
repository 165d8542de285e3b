"""A local Open-Meteo-compatible forecast API driven by measured weather (the demo's and the tests' weather service).

``GET /v1/forecast?latitude=..&longitude=..&hourly=temperature_2m,shortwave_radiation&past_days=P&forecast_days=F
&timeformat=unixtime&timezone=GMT`` answers like Open-Meteo: hourly times from 00:00 UTC ``P`` days before today to
the end of the ``F``-th day from today (UTC epoch seconds), temperature at each instant (degC) and shortwave
radiation as the mean of the hour before each instant (W/m2). Unknown variables or other time formats answer
HTTP 400 ``{"error": true, "reason": ...}`` as the real service does.

The weather is measured: NSRDB PSM3 of NREL's SERF East site (Golden, CO; pvanalytics' data, 15 min, 2016-07-01
to 2016-10-13), its days repeated in a loop. Irradiance is served as that day's clearness (measured GHI / clear-sky
GHI of the data) times the clear-sky GHI at the asked place and time, so cloudy and clear days come in their
measured order and the sun stands where it does at the asked date. Temperatures are the site's, as measured. The
service serves the same data for the past and the future: its forecasts are perfect.
"""

from __future__ import annotations

import socket
import threading
import time
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import pvlib
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

HOUR_S = 3600
DAY_S = 86_400
STEP_S = 900
VARIABLES = ("temperature_2m", "shortwave_radiation")


@cache
def measured() -> tuple[np.ndarray, np.ndarray]:
    """(clearness index, temperature degC) per 15-min step of whole days of the measured data (UTC, from 00:00)."""
    df = pd.read_csv(resources.files("pvanalytics") / "data" / "serf_east_psm3_data.csv")
    t = pd.to_datetime(df["measured_on"], utc=True)
    s = pd.DataFrame(
        {"ghi": df["ghi"].to_numpy(), "clear": df["ghi_clear"].to_numpy(), "temp": df["temp_air"]}
    )
    s.index = t
    first = t.iloc[0].ceil("D")
    days = int((t.iloc[-1] - first) / pd.Timedelta(days=1))
    s = s.reindex(pd.date_range(first, periods=days * 96, freq="15min")).interpolate(limit_direction="both")
    kt = np.where(s["clear"] > 20, s["ghi"] / s["clear"].where(s["clear"] > 20, 1.0), 0.0).clip(0.0, 1.2)
    return kt, s["temp"].to_numpy(dtype=float)


def _steps(epoch_s: np.ndarray) -> np.ndarray:
    """Index into :func:`measured` of each UTC epoch second (the data's days in a loop)."""
    n = measured()[0].size
    return (epoch_s // STEP_S) % n


def answer(latitude: float, longitude: float, past_days: int, forecast_days: int, now_s: float) -> dict:
    """The Open-Meteo answer body for the asked window (see the module docstring)."""
    today = int(now_s) // DAY_S * DAY_S
    times = np.arange(today - past_days * DAY_S, today + forecast_days * DAY_S, HOUR_S, dtype=np.int64)
    kt, temp = measured()
    quarter = (
        times[:, None] - HOUR_S + (np.arange(4) * STEP_S)[None, :]
    ).ravel()  # the hour before each time
    stamps = pd.to_datetime(quarter + STEP_S // 2, unit="s", utc=True)
    clear = (
        pvlib.location.Location(latitude, longitude).get_clearsky(stamps, model="ineichen")["ghi"].to_numpy()
    )
    ghi = (kt[_steps(quarter)] * clear).reshape(-1, 4).mean(axis=1)
    return {
        "latitude": latitude,
        "longitude": longitude,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "hourly_units": {"time": "unixtime", "temperature_2m": "°C", "shortwave_radiation": "W/m²"},
        "hourly": {
            "time": times.tolist(),
            "temperature_2m": np.round(temp[_steps(times)], 1).tolist(),
            "shortwave_radiation": np.round(ghi, 1).tolist(),
        },
    }


def _bad(reason: str) -> JSONResponse:
    return JSONResponse({"error": True, "reason": reason}, status_code=400)


async def forecast(request: Request) -> JSONResponse:
    q = request.query_params
    try:
        lat, lon = float(q["latitude"]), float(q["longitude"])
        past, ahead = int(q.get("past_days", 0)), int(q.get("forecast_days", 7))
    except (KeyError, ValueError) as exc:
        return _bad(f"latitude and longitude are required numbers; past_days, forecast_days integers ({exc})")
    unknown = [v for v in q.get("hourly", "").split(",") if v and v not in VARIABLES]
    if unknown:
        return _bad(f"Cannot initialize WeatherVariable from invalid String value {unknown[0]}")
    if q.get("timeformat") != "unixtime" or q.get("timezone", "GMT") not in ("GMT", "UTC"):
        return _bad("this service answers timeformat=unixtime in timezone GMT only")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and 0 <= past <= 92 and 1 <= ahead <= 16):
        return _bad("latitude, longitude, past_days or forecast_days out of range")
    request.app.state.requests += 1
    return JSONResponse(answer(lat, lon, past, ahead, time.time()))


def make_app() -> Starlette:
    app = Starlette(routes=[Route("/v1/forecast", forecast)])
    app.state.requests = 0
    return app


class WeatherService:
    """The service on a uvicorn thread (tests); ``base_url`` is what ``weather.yaml`` names."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.app = make_app()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="weather-service")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> WeatherService:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"weather service did not start on {self.host}:{self.port}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve until interrupted (``edream weather sim``)."""
    uvicorn.run(make_app(), host=host, port=port, log_level="warning")
