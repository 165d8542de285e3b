"""Grid fixtures: a tiny hand-made pandapower network (fast) and the demo community on simbench 1-LV-rural1."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest
import yaml

from edream.demo.community import Community
from edream.demo.grid import DEMO_GRID_CONFIG, community_forecast_kw
from streams.grid.background import with_background
from streams.grid.config import load_grid_config
from streams.grid.congestion import forecast_matrix
from streams.grid.injections import Injections
from streams.grid.model import GridModel, build_grid_model
from streams.grid.pgm_engine import PgmEngine

#: a day on which the demo grid is congested at midday (reverse PV flow) and in the evening (EV charging)
DEMO_DAY_MS = int(datetime(2026, 5, 20, tzinfo=UTC).timestamp() * 1000)


def write_tiny_net(path: Path, cut_line: bool = False, km: float = 0.1, tap_pos: int | None = None) -> Path:
    """20/0.4 kV 250 kVA transformer T1 feeding LV0 -> L1 -> LV1 -> L2 -> LV2 (NAYY 4x150, ``km`` each);
    ``tap_pos``: set T1's tap and drop its tap changer type, as simbench networks come in pandapower 3."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 20.0, name="MV")
    lv0 = pp.create_bus(net, 0.4, name="LV0")
    lv1 = pp.create_bus(net, 0.4, name="LV1")
    lv2 = pp.create_bus(net, 0.4, name="LV2")
    pp.create_ext_grid(net, mv)
    t1 = pp.create_transformer(net, mv, lv0, "0.25 MVA 20/0.4 kV", name="T1")
    if tap_pos is not None:
        net.trafo.at[t1, "tap_pos"] = tap_pos
        net.trafo.at[t1, "tap_changer_type"] = None
    pp.create_line(net, lv0, lv1, km, "NAYY 4x150 SE", name="L1")
    pp.create_line(net, lv1, lv2, km, "NAYY 4x150 SE", name="L2", in_service=not cut_line)
    pp.create_load(net, lv2, p_mw=0.002, name="own load")
    pp.to_json(net, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_net() -> Callable[..., Path]:
    return write_tiny_net


@pytest.fixture(scope="session")
def demo_model() -> GridModel:
    return build_grid_model(load_grid_config(DEMO_GRID_CONFIG))


@pytest.fixture(scope="session")
def demo_day(demo_model) -> tuple[np.ndarray, Injections]:
    """Slot starts (UTC epoch ms) and injections of the demo day: the community's own profile as forecast plus the
    farms on their simbench profiles."""
    slots = DEMO_DAY_MS + np.arange(96, dtype=np.int64) * 900_000
    kw = forecast_matrix(demo_model, community_forecast_kw(Community(50), slots), len(slots))
    return slots, with_background(demo_model, kw, slots)


@pytest.fixture
def long_feeder(tmp_path, tiny_net):
    """The tiny feeder with 1 km cables (60 kW at its far end pulls LV1 to 0.89 and LV2 to 0.80 pu): a trafo and
    the far line as congestion points, one prosumer near, one far; (model, power-grid-model engine)."""
    folder = tmp_path
    net = tiny_net(folder / "long.json", km=1.0)
    f = folder / "grid.yaml"
    f.write_text(
        yaml.safe_dump(
            {
                "network": str(net),
                "congestion_points": [
                    {"id": "trafo", "area_id": "village", "asset": {"kind": "trafo", "index": 0}},
                    {"id": "far-line", "area_id": "far-street", "asset": {"kind": "line", "index": "L2"}},
                ],
                "prosumers": [{"prosumer_id": "near", "bus": "LV0"}, {"prosumer_id": "far", "bus": "LV2"}],
            }
        )
    )
    model = build_grid_model(load_grid_config(f))
    return model, PgmEngine(model)
