"""The grid mapping file: which network, which assets are congestion points, which prosumer sits on which bus.

YAML, validated with pydantic like the connector configs; every error names the file, the entry and the field::

    network: simbench:1-LV-rural2--0-sw      # or a pandapower JSON file, relative to this file
    background: simbench-profiles            # the grid's own (unmapped) loads/PV follow their simbench profiles; or none
    congestion_points:
      - id: demo-community/transformer       # the congestion point id (also the ClickHouse/topic key)
        area_id: demo-community              # the flexibility area whose prosumers are asked (flex enrolments)
        asset: {kind: trafo, index: 0}        # pandapower element: trafo or line, by index or name
        max_loading_percent: 100
    prosumers:
      - {prosumer_id: prosumer-000, bus: "LV1.201 Bus 5"}   # bus by pandapower name or index

Bus and asset names are checked against the network in :mod:`streams.grid.model` (same error format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GridConfigError(ValueError):
    """An invalid grid mapping or network; the message names the file, the entry and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetRef(_Strict):
    """A pandapower branch element: ``kind`` table and its index (int) or ``name`` (str)."""

    kind: Literal["trafo", "line"]
    index: int | str


class CongestionPointConfig(_Strict):
    """An asset the DSO watches. ``max_loading_percent``: the loading above which the asset is congested, % of
    its rating; ``reward_micro_per_kwh``: what the DSO pays for flexibility there (currency micro-units per kWh)."""

    id: str = Field(min_length=1, max_length=128)
    area_id: str = Field(min_length=1, max_length=128)
    asset: AssetRef
    max_loading_percent: float = Field(default=100.0, gt=0, le=200)
    reward_micro_per_kwh: int = Field(default=150_000, ge=0)


class ProsumerBus(_Strict):
    """A prosumer's connection: ``bus`` is a pandapower bus name (str) or index (int)."""

    prosumer_id: str = Field(min_length=1, max_length=128)
    bus: int | str


class GridConfig(_Strict):
    """A validated mapping file. ``network``: ``simbench:<code>`` or a pandapower JSON path (relative paths are
    resolved against the mapping file); ``background``: how the grid's unmapped loads and generators behave."""

    network: str = Field(min_length=1)
    background: Literal["simbench-profiles", "none"] = "none"
    congestion_points: list[CongestionPointConfig] = Field(min_length=1)
    prosumers: list[ProsumerBus] = Field(min_length=1)
    source: str = Field(default="<memory>", exclude=True)


def _entry_name(section: str, entry: Any) -> str:
    key = "prosumer_id" if section == "prosumers" else "id"
    return str(entry.get(key, "?")) if isinstance(entry, dict) else "?"


def parse_grid_config(data: Any, source: str = "<memory>") -> GridConfig:
    """Validate a decoded mapping document; raise :class:`GridConfigError`
    ``"<source>: prosumers[3] 'prosumer-003': field 'bus': <why>"`` on the first error, duplicates included."""
    if not isinstance(data, dict):
        raise GridConfigError(
            f"{source}: top level must be a mapping with network, congestion_points, prosumers"
        )
    try:
        cfg = GridConfig.model_validate({**data, "source": source})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        if len(loc) >= 2 and loc[0] in ("prosumers", "congestion_points") and isinstance(loc[1], int):
            section, i = loc[0], loc[1]
            where = f"{source}: {section}[{i}] '{_entry_name(section, data[section][i])}':"
            loc = loc[2:]
        else:
            where = f"{source}:"
        field = ".".join(str(p) for p in loc) or "(entry)"
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise GridConfigError(f"{where} field '{field}': {err['msg']}{more}") from None
    _no_duplicates(cfg.prosumers, "prosumers", "prosumer_id", source, "prosumer mapped twice")
    _no_duplicates(cfg.congestion_points, "congestion_points", "id", source, "duplicate congestion point")
    return cfg


def _no_duplicates(entries: list[Any], section: str, key: str, source: str, why: str) -> None:
    seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        value = getattr(e, key)
        if value in seen:
            raise GridConfigError(
                f"{source}: {section}[{i}] '{value}': field '{key}': {why} (first at {section}[{seen[value]}])"
            )
        seen[value] = i


def load_grid_config(path: Path | str) -> GridConfig:
    """Read and validate a mapping file; a relative ``network`` path is made absolute against the file's folder."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise GridConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise GridConfigError(f"{path}: not valid YAML: {exc}") from None
    cfg = parse_grid_config(data, str(path))
    if not cfg.network.startswith("simbench:") and not Path(cfg.network).is_absolute():
        cfg = cfg.model_copy(update={"network": str(path.parent / cfg.network)})
    return cfg
