"""The grid model: the network with each mapped prosumer as its own load, the congestion points resolved to
pandapower elements with their ratings, and the grid's own (background) loads and generators.

Decisions: a mapped prosumer *is* the household at its bus: the grid's own loads and PV at mapped buses are taken
out of service (several prosumers may share a bus, e.g. a block of flats). With ``background: none`` every unmapped
load and generator is out of service too (the network carries the community only). All loads are constant power
(no ZIP share), so both power-flow engines model the same thing. Prosumers draw at cos phi = 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandapower as pp

from streams.grid.config import GridConfig, GridConfigError
from streams.grid.network import check_supplied, downstream_buses, load_network


@dataclass(frozen=True)
class CongestionPoint:
    """A watched asset. ``element``: pandapower index in table ``kind``; ``rated_kva``: apparent power at 100 %
    loading (transformer ``sn``; line sqrt(3) x U x I_max x parallel x derating); ``zone_buses``: pandapower bus
    indices supplied through the asset (its voltage band and the prosumers it can ask)."""

    id: str
    area_id: str
    kind: str
    element: int
    rated_kva: float
    max_loading_percent: float
    reward_micro_per_kwh: int
    zone_buses: frozenset[int]


@dataclass(frozen=True)
class GridModel:
    """``net``: the pandapower network with one load per prosumer (named by prosumer id); ``prosumer_loads`` and
    ``prosumer_buses`` are pandapower load/bus indices in ``prosumer_ids`` order; ``background_loads``/``_sgens``
    the grid's own in-service loads/generators (kW from :mod:`streams.grid.background`)."""

    network: str
    background: str
    net: pp.pandapowerNet
    prosumer_ids: tuple[str, ...]
    prosumer_loads: np.ndarray
    prosumer_buses: np.ndarray
    background_loads: np.ndarray
    background_sgens: np.ndarray
    congestion_points: tuple[CongestionPoint, ...]
    _cache: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    def cached(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """``make()`` once per model and key: derived data that only depends on the network (e.g. zone networks)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def zone_prosumers(self, cp: CongestionPoint) -> list[int]:
        """Positions (in ``prosumer_ids``) of the prosumers supplied through ``cp``."""
        return [i for i, b in enumerate(self.prosumer_buses) if int(b) in cp.zone_buses]


def _resolve(table, ref: int | str, where: str, what: str) -> int:
    """pandapower index of an element given by index (int) or name (str)."""
    if isinstance(ref, int):
        if ref in table.index:
            return int(ref)
    else:
        hits = table.index[table["name"] == ref]
        if len(hits) == 1:
            return int(hits[0])
        if len(hits) > 1:
            raise GridConfigError(f"{where}: ambiguous {what} name {ref!r} ({len(hits)} elements carry it)")
    raise GridConfigError(f"{where}: unknown {what} {ref!r}")


def _rated_kva(net: pp.pandapowerNet, kind: str, idx: int) -> float:
    if kind == "trafo":
        return float(net.trafo.at[idx, "sn_mva"]) * 1000.0
    line = net.line.loc[idx]
    vn_kv = float(net.bus.at[int(line.from_bus), "vn_kv"])
    return math.sqrt(3) * vn_kv * float(line.max_i_ka) * float(line.df) * float(line.parallel) * 1000.0


def _ratio_taps(net: pp.pandapowerNet) -> None:
    """simbench networks loaded in pandapower 3 carry ``tap_changer_type`` None, which pandapower reads as "no tap
    changer" and so ignores ``tap_pos`` (e.g. the 110/10 kV transformers of 1-MVLV-urban at tap -1: 1.5 % on every
    bus below). A transformer with a tap step is given a ratio tap changer, as simbench means it and as
    power-grid-model computes it."""
    if "tap_changer_type" not in net.trafo:
        return
    missing = (
        net.trafo.tap_changer_type.isna() & net.trafo.tap_step_percent.notna() & net.trafo.tap_pos.notna()
    )
    net.trafo.loc[missing, "tap_changer_type"] = "Ratio"


def build_grid_model(cfg: GridConfig) -> GridModel:
    """Load the network, check it, map the prosumers and congestion points; every error names the mapping file,
    the entry and the field (:class:`GridConfigError`)."""
    src = cfg.source
    net = load_network(cfg.network, f"{src}: field 'network'")
    check_supplied(net, f"{src}: field 'network' ({cfg.network})")
    buses = []
    for i, p in enumerate(cfg.prosumers):
        where = f"{src}: prosumers[{i}] '{p.prosumer_id}': field 'bus'"
        b = _resolve(net.bus, p.bus, where, "bus")
        if not net.bus.at[b, "in_service"]:
            raise GridConfigError(f"{where}: bus {p.bus!r} is out of service")
        buses.append(b)
    mapped = set(buses)
    for table in ("load", "sgen"):
        own = net[table].bus.isin(mapped) | (cfg.background == "none")
        net[table].loc[own, "in_service"] = False
    for col in [c for c in net.load.columns if c.startswith("const_") and c.endswith("percent")]:
        net.load[col] = 0.0
    _ratio_taps(net)
    background_loads = np.array(net.load.index[net.load.in_service], dtype=np.int64)
    background_sgens = np.array(net.sgen.index[net.sgen.in_service], dtype=np.int64)
    loads = [
        pp.create_load(net, bus=b, p_mw=0.0, q_mvar=0.0, name=p.prosumer_id)
        for p, b in zip(cfg.prosumers, buses, strict=True)
    ]
    assets = []
    for i, c in enumerate(cfg.congestion_points):
        where = f"{src}: congestion_points[{i}] '{c.id}': field 'asset'"
        idx = _resolve(net[c.asset.kind], c.asset.index, where, c.asset.kind)
        if not net[c.asset.kind].at[idx, "in_service"]:
            raise GridConfigError(f"{where}: {c.asset.kind} {c.asset.index!r} is out of service")
        assets.append((c.asset.kind, idx))
    zones = downstream_buses(net, assets)
    points = [
        CongestionPoint(
            id=c.id,
            area_id=c.area_id,
            kind=kind,
            element=idx,
            rated_kva=_rated_kva(net, kind, idx),
            max_loading_percent=c.max_loading_percent,
            reward_micro_per_kwh=c.reward_micro_per_kwh,
            zone_buses=zone,
        )
        for c, (kind, idx), zone in zip(cfg.congestion_points, assets, zones, strict=True)
    ]
    return GridModel(
        network=cfg.network,
        background=cfg.background,
        net=net,
        prosumer_ids=tuple(p.prosumer_id for p in cfg.prosumers),
        prosumer_loads=np.array(loads, dtype=np.int64),
        prosumer_buses=np.array(buses, dtype=np.int64),
        background_loads=background_loads,
        background_sgens=background_sgens,
        congestion_points=tuple(points),
    )
