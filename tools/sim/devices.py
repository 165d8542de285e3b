"""What a simulated prosumer's meter shows at an instant: contract quantities in contract units (W, var, V, A,
Hz, Wh, %, degC) derived from a :class:`~tools.sim.profiles.Household`."""

from __future__ import annotations

import math

from connectors.models import Phase, Quantity
from tools.sim.profiles import Household

Values = dict[tuple[Quantity, Phase], float]


def household_values(h: Household, t_ms: int) -> Values:
    load, pv = h.step(t_ms)
    assert h.rng is not None
    net = load - pv
    v = 230.0 + float(h.rng.normal(0, 1.5))
    q = 0.25 * load
    return {
        (Quantity.P_ACTIVE, Phase.TOTAL): net,
        (Quantity.Q_REACTIVE, Phase.TOTAL): q,
        (Quantity.S_APPARENT, Phase.TOTAL): math.hypot(net, q),
        (Quantity.VOLTAGE_LN, Phase.L1): v,
        (Quantity.CURRENT, Phase.L1): abs(net) / v,
        (Quantity.FREQUENCY, Phase.TOTAL): 50.0 + float(h.rng.normal(0, 0.02)),
        (Quantity.E_IMPORT, Phase.TOTAL): h.e_import_wh,
        (Quantity.E_EXPORT, Phase.TOTAL): h.e_export_wh,
        (Quantity.P_PRODUCTION, Phase.TOTAL): pv,
        (Quantity.SOC, Phase.TOTAL): 50.0 + 40.0 * math.sin(t_ms / 3_600_000 + h.index),
        (Quantity.TEMPERATURE, Phase.TOTAL): 21.0 + float(h.rng.normal(0, 0.2)),
    }
