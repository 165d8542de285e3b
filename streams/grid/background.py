"""The grid's own loads and generators over a day from the simbench profiles the network ships with.

simbench profiles are one year (2016) of quarter hours, normalised to each element's ``p_mw`` (loads: ``<type>_pload``
and ``<type>_qload``, generators: ``<type>``). Day ``d`` of the forecast takes the profile's day of year of ``d``
(2016 is a leap year, so every day of year exists), slot by slot; profile times are taken as UTC quarter hours.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from streams.grid.injections import Injections
from streams.grid.model import GridModel

SLOT_MS = 900_000
DAY_SLOTS = 96


def profile_rows(slot_starts_ms: np.ndarray) -> np.ndarray:
    """Row of the 2016 profile tables for each slot start (UTC epoch ms): same day of year and quarter hour."""
    rows = []
    for ms in np.asarray(slot_starts_ms, dtype=np.int64):
        t = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
        doy = t.timetuple().tm_yday - 1
        rows.append(doy * DAY_SLOTS + (t.hour * 60 + t.minute) // 15)
    return np.array(rows, dtype=np.int64)


def _profile(table, names, rows: np.ndarray) -> np.ndarray:
    if len(names) == 0:
        return np.zeros((len(rows), 0))
    missing = sorted(set(names) - set(table.columns))
    if missing:
        raise ValueError(f"simbench profile(s) {missing[:3]} not in the network's profiles")
    return table[list(names)].to_numpy(dtype=float)[rows]


def with_background(model: GridModel, prosumer_kw: np.ndarray, slot_starts_ms: np.ndarray) -> Injections:
    """Injections for the prosumers' forecast (S, P) kW plus, with ``background: simbench-profiles``, the grid's own
    loads and PV at their profile values for those slots (zero with ``background: none``)."""
    s = len(slot_starts_ms)
    net = model.net
    if model.background == "none" or "profiles" not in net:
        zl, zg = np.zeros((s, len(model.background_loads))), np.zeros((s, len(model.background_sgens)))
        return Injections(np.asarray(prosumer_kw, dtype=float), zl, zl.copy(), zg)
    rows = profile_rows(slot_starts_ms)
    loads = net.load.loc[model.background_loads]
    sgens = net.sgen.loc[model.background_sgens]
    lp = net.profiles["load"]
    p_rel = _profile(lp, [f"{t}_pload" for t in loads.profile], rows)
    q_rel = _profile(lp, [f"{t}_qload" for t in loads.profile], rows)
    g_rel = _profile(net.profiles["renewables"], list(sgens.profile), rows)
    return Injections(
        prosumer_kw=np.asarray(prosumer_kw, dtype=float),
        load_kw=p_rel * loads.p_mw.to_numpy() * 1000.0,
        load_kvar=q_rel * loads.q_mvar.to_numpy() * 1000.0,
        sgen_kw=g_rel * sgens.p_mw.to_numpy() * 1000.0,
    )
