"""Finite differences on a grid (pure): one slot's flow and one more flow per bus of the given prosumers, each with
``delta_kw`` more consumption at that bus, in one batch; the sensitivities of loading and of voltage are read off
it (:mod:`streams.grid.congestion`, :mod:`streams.grid.voltage`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from streams.grid.injections import Injections
from streams.grid.model import GridModel
from streams.grid.powerflow import FlowResult, PowerFlowEngine


def per_prosumer(
    model: GridModel,
    engine: PowerFlowEngine,
    one: Injections,
    prosumers: Sequence[int],
    delta_kw: float,
    read: Callable[[FlowResult], np.ndarray],
) -> dict[str, float]:
    """{prosumer id: d read / d kW} for the prosumers at positions ``prosumers``: scenario ``one`` as the base and
    one perturbed flow per bus they sit on; ``read`` takes the batch's result to one value per scenario (base
    first). Prosumers sharing a bus share its value; non-finite values (a flow that did not converge) are left out."""
    if not len(prosumers):
        return {}
    positions = np.asarray(prosumers, dtype=np.int64)
    buses, first = np.unique(model.prosumer_buses[positions], return_index=True)
    scenarios = one.take(np.zeros(len(buses) + 1, dtype=np.int64))
    scenarios.prosumer_kw[np.arange(1, len(buses) + 1), positions[first]] += delta_kw
    values = read(engine.run(scenarios))
    d = (values[1:] - values[0]) / delta_kw
    per_bus = dict(zip(buses.tolist(), d, strict=True))
    out = {model.prosumer_ids[p]: float(per_bus[int(model.prosumer_buses[p])]) for p in positions}
    return {p: v for p, v in out.items() if np.isfinite(v)}
