"""The reference engine: pandapower's Newton-Raphson, one ``runpp`` per scenario (slow; for tests and benchmarks).

Transformer loading is taken on power (``trafo_loading="power"``, as power-grid-model reports it); a scenario that
does not converge is flagged (NaN), never raised."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp

from streams.grid.injections import Injections
from streams.grid.model import GridModel
from streams.grid.powerflow import FlowResult

# the network's structure is fixed across scenarios: only bus P/Q change, so pandapower keeps its Ybus between runs
RECYCLE = {"bus_pq": True, "trafo": False, "gen": False}


class PandapowerEngine:
    name = "pandapower"

    def __init__(self, model: GridModel, trafo_model: str = "t"):
        self.model = model
        self.trafo_model = trafo_model

    def for_model(self, model: GridModel) -> PandapowerEngine:
        return PandapowerEngine(model, self.trafo_model)

    def run(self, injections: Injections) -> FlowResult:
        model = self.model
        net = copy.deepcopy(model.net)
        s, cps = injections.scenarios, model.congestion_points
        converged = np.zeros(s, dtype=bool)
        loading = np.full((s, len(cps)), np.nan)
        vm = np.full((s, len(net.bus)), np.nan)
        loads = np.concatenate([model.prosumer_loads, model.background_loads])
        recycle = (
            None  # the first run (and the one after a failure) builds pandapower's internal model afresh
        )
        for k in range(s):
            net.load.loc[loads, "p_mw"] = (
                np.concatenate([injections.prosumer_kw[k], injections.load_kw[k]]) / 1000.0
            )
            net.load.loc[loads, "q_mvar"] = (
                np.concatenate([np.zeros(len(model.prosumer_loads)), injections.load_kvar[k]]) / 1000.0
            )
            net.sgen.loc[model.background_sgens, "p_mw"] = injections.sgen_kw[k] / 1000.0
            net.sgen.loc[model.background_sgens, "q_mvar"] = 0.0
            try:
                pp.runpp(
                    net,
                    algorithm="nr",
                    tolerance_mva=1e-8,
                    max_iteration=20,
                    trafo_loading="power",
                    trafo_model=self.trafo_model,
                    numba=False,
                    recycle=recycle,
                )
            except pp.LoadflowNotConverged:
                recycle = None  # a failed run leaves stale internals: the next run must not recycle them
                continue
            recycle = RECYCLE
            converged[k] = True
            vm[k] = net.res_bus.vm_pu.loc[net.bus.index].to_numpy()
            for c, cp in enumerate(cps):
                loading[k, c] = net[f"res_{cp.kind}"].at[cp.element, "loading_percent"]
        return FlowResult(converged=converged, loading_percent=loading, vm_pu=vm)
