"""An asset and the zone it supplies as a grid model of its own, for cheap per-bus sensitivity flows.

The zone (the buses supplied through the asset) plus the asset's supplying bus are cut out of the network
(pandapower ``select_subnet``, original indices kept); the supplying bus becomes the slack at the voltage the full
power flow found there. Perturbing one zone bus then costs a power flow on a few hundred buses instead of the whole
network; the rest of the network is taken as stiff behind the asset (its voltage does not move with one kW).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandapower as pp
from pandapower.toolbox import select_subnet

from streams.grid.injections import Injections
from streams.grid.model import CongestionPoint, GridModel


def supplying_bus(model: GridModel, cp: CongestionPoint) -> int:
    """The asset's end outside its zone: a transformer's HV bus, the upstream end of a line."""
    net = model.net
    if cp.kind == "trafo":
        return int(net.trafo.at[cp.element, "hv_bus"])
    a, b = int(net.line.at[cp.element, "from_bus"]), int(net.line.at[cp.element, "to_bus"])
    return b if a in cp.zone_buses else a


def zone_net(model: GridModel, cp: CongestionPoint) -> pp.pandapowerNet:
    """The zone's network with a slack at the supplying bus (``vm_pu`` set per use by :func:`zone_model`)."""
    up = supplying_bus(model, cp)
    sub = select_subnet(model.net, cp.zone_buses | {up})
    sub.ext_grid.drop(sub.ext_grid.index, inplace=True)
    pp.create_ext_grid(sub, up, vm_pu=1.0)
    return sub


def zone_model(
    model: GridModel, cp: CongestionPoint, sub: pp.pandapowerNet, vm_pu: float
) -> tuple[GridModel, np.ndarray, np.ndarray, np.ndarray]:
    """The zone as a :class:`GridModel` with its slack at ``vm_pu``, and the positions (in the full model's
    prosumer / background load / background generator order) of what it keeps."""
    net = copy.deepcopy(sub)
    net.ext_grid["vm_pu"] = vm_pu
    keep_p = np.flatnonzero(
        np.isin(model.prosumer_buses, list(cp.zone_buses))
    )  # not those at the supplying bus
    keep_l = np.flatnonzero(np.isin(model.background_loads, net.load.index))
    keep_g = np.flatnonzero(np.isin(model.background_sgens, net.sgen.index))
    zm = replace(
        model,
        net=net,
        _cache={},
        prosumer_ids=tuple(model.prosumer_ids[i] for i in keep_p),
        prosumer_loads=model.prosumer_loads[keep_p],
        prosumer_buses=model.prosumer_buses[keep_p],
        background_loads=model.background_loads[keep_l],
        background_sgens=model.background_sgens[keep_g],
        congestion_points=(cp,),
    )
    return zm, keep_p, keep_l, keep_g


def zone_injections(
    inj: Injections, rows: np.ndarray, keep_p: np.ndarray, keep_l: np.ndarray, keep_g: np.ndarray
) -> Injections:
    """Scenarios ``rows`` restricted to the zone's prosumers, loads and generators."""
    return Injections(
        inj.prosumer_kw[np.ix_(rows, keep_p)],
        inj.load_kw[np.ix_(rows, keep_l)],
        inj.load_kvar[np.ix_(rows, keep_l)],
        inj.sgen_kw[np.ix_(rows, keep_g)],
    )
