"""Expected PV output (W) from pvlib: clear-sky or measured plane-of-array irradiance, PVWatts DC model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pvlib


@dataclass(frozen=True)
class PvSystem:
    """A PV asset. ``dc_capacity_w``: DC rating at 1000 W/m2, W. ``ac_limit_w``: inverter AC limit, W (None =
    no clipping). ``gamma_pdc``: power temperature coefficient, 1/degC. Angles in degrees, azimuth 180 = south."""

    latitude: float
    longitude: float
    dc_capacity_w: float
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    altitude_m: float = 0.0
    ac_limit_w: float | None = None
    gamma_pdc: float = -0.004


def _index(times_ms: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(times_ms, dtype="int64"), unit="ms", utc=True))


def clearsky_poa(system: PvSystem, times_ms: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clear-sky (Ineichen) GHI/DNI/DHI and the plane-of-array irradiance, W/m2, at slot centres."""
    idx = _index(times_ms) + pd.Timedelta(minutes=7.5)
    loc = pvlib.location.Location(system.latitude, system.longitude, altitude=system.altitude_m)
    solpos = loc.get_solarposition(idx)
    cs = loc.get_clearsky(idx, model="ineichen", solar_position=solpos)
    poa = pvlib.irradiance.get_total_irradiance(
        system.tilt_deg,
        system.azimuth_deg,
        solpos["apparent_zenith"],
        solpos["azimuth"],
        cs["dni"],
        cs["ghi"],
        cs["dhi"],
    )
    return cs, poa.assign(zenith=solpos["apparent_zenith"].to_numpy(), azimuth=solpos["azimuth"].to_numpy())


def dc_power_w(system: PvSystem, poa_wm2: np.ndarray, temp_air_c: np.ndarray | float, wind_ms: float = 1.0):
    """PVWatts DC power (W) with the SAPM open-rack cell temperature model; no clipping."""
    params = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
    poa = np.clip(np.asarray(poa_wm2, dtype=float), 0.0, None)
    t_cell = pvlib.temperature.sapm_cell(poa, temp_air_c, wind_ms, **params)
    return np.asarray(pvlib.pvsystem.pvwatts_dc(poa, t_cell, system.dc_capacity_w, system.gamma_pdc))


def expected_clearsky_w(system: PvSystem, times_ms: np.ndarray, temp_air_c: float = 15.0) -> np.ndarray:
    """Clear-sky expected DC power, W, per slot (slot start UTC ms)."""
    _, poa = clearsky_poa(system, times_ms)
    return dc_power_w(system, poa["poa_global"].to_numpy(), temp_air_c)
