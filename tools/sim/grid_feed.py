"""Test and demo inputs of the grid stage: a small pandapower grid mapping and prosumer Forecast records."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandapower as pp
import yaml

SLOT_MS = 900_000


def write_feeder_grid(folder: Path, name: str = "feeder", prosumers: Sequence[str] = ("p0", "p1")) -> Path:
    """A 20/0.4 kV 250 kVA transformer T1 feeding LV0 -> L1 -> LV1 -> L2 -> LV2 (NAYY 4x150, 100 m each) as
    ``<folder>/<name>.json`` and its mapping ``<folder>/<name>.yaml`` (grid id ``name``): congestion point
    ``<name>/T1`` (area ``<name>``, limit 100 %), the prosumers alternately on LV1 and LV2, no background."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 20.0, name="MV")
    lv = [pp.create_bus(net, 0.4, name=f"LV{i}") for i in range(3)]
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv[0], "0.25 MVA 20/0.4 kV", name="T1")
    for i in (1, 2):
        pp.create_line(net, lv[i - 1], lv[i], 0.1, "NAYY 4x150 SE", name=f"L{i}")
    folder.mkdir(parents=True, exist_ok=True)
    pp.to_json(net, str(folder / f"{name}.json"))
    mapping = {
        "network": f"{name}.json",
        "congestion_points": [
            {"id": f"{name}/T1", "area_id": name, "asset": {"kind": "trafo", "index": "T1"}}
        ],
        "prosumers": [{"prosumer_id": p, "bus": f"LV{1 + i % 2}"} for i, p in enumerate(prosumers)],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    return path


def forecast(
    prosumer: str,
    first_slot_ms: int,
    kw: Sequence[float],
    issued_at: int,
    prop: str = "ENERGY_CONSUMPTION",
    granularity: str = "DAYAHEAD",
    minutes: int = 15,
) -> dict[str, Any]:
    """A Forecast record (avro/Forecast.avsc) of ``prosumer``: ``kw[k]`` mean kW in the k-th step of ``minutes``
    from ``first_slot_ms`` (UTC epoch ms), as Wh per step."""
    return {
        "event_id": f"{prosumer}/{prop}/{granularity}/{issued_at}",
        "entity_id": prosumer,
        "entity_kind": "PROSUMER",
        "property": prop,
        "prediction_granularity": granularity,
        "profile_granularity_minutes": minutes,
        "issued_at": issued_at,
        "model": "test",
        "points": [
            {
                "ts": first_slot_ms + k * minutes * 60_000,
                "value": v * minutes * 1000 / 60,
                "lower": None,
                "upper": None,
            }
            for k, v in enumerate(kw)
        ],
    }
