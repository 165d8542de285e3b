"""Per-slot power injections of a grid model: what the power-flow engines solve for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Injections:
    """One row per scenario (slot). ``prosumer_kw``: (S, P) net consumption per prosumer, kW, import positive, in
    ``GridModel.prosumer_ids`` order; ``load_kw``/``load_kvar``: (S, L) the grid's own loads (``background_loads``
    order); ``sgen_kw``: (S, G) its own generators (``background_sgens`` order), kW generated (>= 0)."""

    prosumer_kw: np.ndarray
    load_kw: np.ndarray
    load_kvar: np.ndarray
    sgen_kw: np.ndarray

    @property
    def scenarios(self) -> int:
        return self.prosumer_kw.shape[0]

    def take(self, rows: np.ndarray) -> Injections:
        """The scenarios ``rows`` (indices, repeats allowed), copied."""
        return Injections(
            *(a[rows].copy() for a in (self.prosumer_kw, self.load_kw, self.load_kvar, self.sgen_kw))
        )
