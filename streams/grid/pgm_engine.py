"""Batch power flow with power-grid-model (C++ core, one model, many scenarios): the engine of the forecast.

The pandapower network is converted once by power-grid-model-io's ``PandaPowerConverter``; every scenario
updates the prosumers' and background loads' ``sym_load`` and the generators' ``sym_gen`` power (W, var). Newton-
Raphson, 1e-8 pu tolerance, 20 iterations, as pandapower; failed scenarios are flagged (NaN), never raised.
simbench transformers carry no vector group: the converter needs one, so they are taken as Dyn5 (usual for
distribution transformers; irrelevant for a symmetric power flow).
"""

from __future__ import annotations

import copy
from functools import cached_property

import numpy as np
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    PowerGridModel,
    initialize_array,
)
from power_grid_model_io.converters import PandaPowerConverter

from streams.grid.injections import Injections
from streams.grid.model import GridModel
from streams.grid.powerflow import FlowResult

TOLERANCE_PU = 1e-8
MAX_ITERATIONS = 20


class PgmEngine:
    """power-grid-model engine bound to one grid model (conversion is cached per model)."""

    name = "power-grid-model"

    def __init__(self, model: GridModel, threading: int = 0):
        """``threading``: power-grid-model batch threads (0 = sequential, -1 = hardware threads)."""
        self.model = model
        self.threading = threading
        net = copy.deepcopy(model.net)
        net.trafo["vector_group"] = net.trafo["vector_group"].fillna("Dyn5")
        self._conv = PandaPowerConverter()
        self._input, _ = self._conv.load_input_data(net, make_extra_info=False)
        self._pgm = PowerGridModel(self._input, system_frequency=50.0)

    def for_model(self, model: GridModel) -> PgmEngine:
        return PgmEngine(model, self.threading)

    def _ids(self, table: str, idx: np.ndarray, name: str | None = None) -> np.ndarray:
        return np.array([self._conv.get_id(table, int(i), name) for i in idx], dtype=np.int32)

    @cached_property
    def _load_ids(self) -> np.ndarray:
        m = self.model
        return self._ids("load", np.concatenate([m.prosumer_loads, m.background_loads]), "const_power")

    @cached_property
    def _sgen_ids(self) -> np.ndarray:
        return self._ids("sgen", self.model.background_sgens)

    @cached_property
    def _branch_outputs(self) -> list[ComponentType]:
        """Nodes and the branch types this network has (a zone cut out of a grid may have no transformer)."""
        kinds = (ComponentType.node, ComponentType.transformer, ComponentType.line)
        return [c for c in kinds if c in self._input and len(self._input[c])]

    @cached_property
    def _outputs(self) -> tuple[np.ndarray, list[tuple[ComponentType, int]]]:
        """Output row of each bus (``net.bus`` order) and, per congestion point, its component type and row."""
        m = self.model
        rows = {
            comp: {int(v): k for k, v in enumerate(self._input[comp]["id"])} for comp in self._branch_outputs
        }
        bus_ids = self._ids("bus", np.asarray(m.net.bus.index))
        bus_rows = np.array([rows[ComponentType.node][int(i)] for i in bus_ids])
        points = []
        for cp in m.congestion_points:
            comp = ComponentType.transformer if cp.kind == "trafo" else ComponentType.line
            points.append((comp, rows[comp][int(self._conv.get_id(cp.kind, cp.element))]))
        return bus_rows, points

    def run(self, injections: Injections) -> FlowResult:
        s = injections.scenarios
        loads = initialize_array(DatasetType.update, ComponentType.sym_load, (s, len(self._load_ids)))
        loads["id"] = self._load_ids
        loads["p_specified"] = np.hstack([injections.prosumer_kw, injections.load_kw]) * 1000.0
        loads["q_specified"] = (
            np.hstack([np.zeros_like(injections.prosumer_kw), injections.load_kvar]) * 1000.0
        )
        update = {ComponentType.sym_load: loads}
        if len(self._sgen_ids):
            gens = initialize_array(DatasetType.update, ComponentType.sym_gen, (s, len(self._sgen_ids)))
            gens["id"] = self._sgen_ids
            gens["p_specified"] = injections.sgen_kw * 1000.0
            gens["q_specified"] = 0.0
            update[ComponentType.sym_gen] = gens
        result = self._pgm.calculate_power_flow(
            update_data=update,
            calculation_method=CalculationMethod.newton_raphson,
            error_tolerance=TOLERANCE_PU,
            max_iterations=MAX_ITERATIONS,
            threading=self.threading,
            continue_on_batch_error=True,
            output_component_types=self._branch_outputs,
        )
        converged = np.ones(s, dtype=bool)
        err = self._pgm.batch_error
        if err is not None:
            converged[np.asarray(err.failed_scenarios, dtype=np.int64)] = False
        bus_rows, points = self._outputs
        vm = result[ComponentType.node]["u_pu"][:, bus_rows].astype(float)
        loading = np.empty((s, len(points)))
        for c, (comp, row) in enumerate(points):
            loading[:, c] = result[comp]["loading"][:, row] * 100.0
        vm[~converged] = np.nan
        loading[~converged] = np.nan
        return FlowResult(converged=converged, loading_percent=loading, vm_pu=vm)
