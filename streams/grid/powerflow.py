"""What a power-flow engine returns for a batch of scenarios, and the engine interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from streams.grid.injections import Injections
from streams.grid.model import GridModel


@dataclass(frozen=True)
class FlowResult:
    """Per scenario (row): ``converged`` (S,) bool; ``loading_percent`` (S, C) per congestion point, % of its rating
    (transformer: apparent power / sn; line: current / I_max); ``vm_pu`` (S, B) voltage magnitude per bus in
    ``net.bus.index`` order, per unit of nominal. Rows that did not converge hold NaN."""

    converged: np.ndarray
    loading_percent: np.ndarray
    vm_pu: np.ndarray


class PowerFlowEngine(Protocol):
    """Solves a batch of scenarios on the grid model it was built for. Never raises for a scenario that does not converge: that row is
    flagged in ``FlowResult.converged``."""

    name: str

    def run(self, injections: Injections) -> FlowResult: ...

    def for_model(self, model: GridModel) -> PowerFlowEngine:
        """The same kind of engine, with the same settings, for another model (e.g. a zone)."""
        ...
