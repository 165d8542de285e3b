"""The demo community on its grid: the mapping file and the community's own day-ahead forecast per prosumer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edream.demo.community import Community

SLOT_MS = 900_000
#: the demo community (50 prosumers, seed 1) on simbench 1-LV-rural1--0-sw; see the file's header
DEMO_GRID_CONFIG = Path(__file__).resolve().parents[2] / "streams" / "grid" / "config" / "demo-community.yaml"


#: the demo grid's congestion point (its transformer), which the demo DSO asks flexibility for over UFTP
DEMO_TRANSFORMER = "demo-community/transformer"


def dso_congestion_points(grid_configs: str, ean: str) -> str:
    """The demo DSO's ``--congestion-points`` (grid point id = its UFTP congestion point ``ean``) when the demo's grid
    is among ``grid_configs`` (GRID_CONFIGS, comma-separated paths); empty otherwise (the timed requests only)."""
    configured = {Path(p.strip()).resolve() for p in grid_configs.split(",") if p.strip()}
    return f"{DEMO_TRANSFORMER}={ean}" if DEMO_GRID_CONFIG in configured else ""


def community_forecast_kw(community: Community, slot_starts_ms: Sequence[int]) -> dict[str, np.ndarray]:
    """Per prosumer id, the expected net consumption (kW, import positive) averaged over each 15-min slot starting at
    ``slot_starts_ms`` (UTC epoch ms): the prosumers' own noise-free profile, as a perfect forecast."""
    return {
        p.prosumer_id: np.array(
            [community.expected_wh(p, s, s + SLOT_MS) * 3_600_000 / SLOT_MS / 1000.0 for s in slot_starts_ms]
        )
        for p in community.prosumers
    }
