"""Topology agent ``grid``: the prosumers' forecasts -> the DSO's congestion forecast per congestion point and slot
(``grid.congestion.v1``) and, with the DSO role on, the signed flexibility requests that relieve it; the orders
and the measured intervals -> the proof of relief (``grid.relief.v1``).

:func:`stage` is the stage on the one runtime (:mod:`streams.grid.stage`). The grid mapping files come from
``GRID_CONFIGS`` (comma-separated; read and checked here, so a bad file fails the stage at start naming file, entry
and field); their networks are loaded and converted once per process in ``make``. Forecasts are re-keyed to the
grid their prosumer is mapped to, orders to the grids of the prosumers they allocate to, intervals to their
prosumer's grid; records of unmapped prosumers are dropped before the repartition hop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.analytics.baseline_processor import decode_as
from streams.grid.config import GridConfig, GridConfigError, load_grid_config
from streams.grid.profile_store import PROPERTIES
from streams.grid.stage import TICK_MS, CongestionProcessor, DsoRole, Topics, grid_of
from streams.validation.fields import Checker, InvalidRecord
from streams.validation.flex_order import check_flex_order
from streams.validation.limits import Limits

STAGE = "grid"


def load_grids(paths: str) -> dict[str, GridConfig]:
    """Grid id (file name without ``.yaml``) -> validated mapping, for the comma-separated ``paths``; a grid id
    used twice or a prosumer mapped on two grids is a :class:`GridConfigError` naming both files."""
    grids: dict[str, GridConfig] = {}
    owner: dict[str, str] = {}
    for raw in filter(None, (p.strip() for p in paths.split(","))):
        cfg = load_grid_config(raw)
        gid = Path(raw).stem
        if gid in grids:
            raise GridConfigError(f"{raw}: grid id {gid!r} already used by {grids[gid].source}")
        for i, p in enumerate(cfg.prosumers):
            if p.prosumer_id in owner:
                raise GridConfigError(
                    f"{raw}: prosumers[{i}] '{p.prosumer_id}': field 'prosumer_id': "
                    f"already mapped on grid {owner[p.prosumer_id]!r}"
                )
            owner[p.prosumer_id] = gid
        grids[gid] = cfg
    return grids


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The ``grid`` stage: ``forecast.profiles.v1`` (re-keyed to the grid id) in; ``grid.congestion.v1`` (key
    grid_id) and, when ``GRID_DSO_ID`` and ``GRID_DSO_KEY`` are set, ``flex.requests.v1`` out; with ``GRID_RELIEF``
    (default) and a grid configured, also ``flex.orders.v1`` and ``meter.intervals.15m.v1`` (re-keyed to the grid)
    in and ``grid.relief.v1`` out (without a grid there is nothing to prove, and no start pays their partitions)."""
    topics = AgentTopics(topology, STAGE)
    forecasts, orders, intervals = (
        topics.input("Forecast"),
        topics.input("FlexOrder"),
        topics.input("IntervalEnergy"),
    )
    configs = load_grids(settings.grid_configs)
    relief = settings.grid_relief and bool(configs)
    names = Topics(forecasts, topics.output("GridCongestion"), topics.output("FlexRequest"))
    if relief:
        names = dataclasses.replace(
            names, orders=orders, intervals=intervals, relief=topics.output("GridRelief")
        )
    grid_for = grid_of({g: tuple(p.prosumer_id for p in c.prosumers) for g, c in configs.items()})
    serde = Serde(settings)
    dso = None
    if settings.grid_dso_id and settings.grid_dso_key:
        dso = DsoRole(settings.grid_dso_id, settings.grid_dso_key.get_secret_value())

    def to_grid(_key: bytes | None, value: bytes) -> list[bytes]:
        rec = serde.decode(value, forecasts)[1]
        if rec.get("entity_kind") != "PROSUMER" or rec.get("property") not in PROPERTIES:
            return []
        grid = grid_for(rec.get("entity_id"))
        return [grid.encode()] if grid else []

    def order_to_grids(_key: bytes | None, value: bytes) -> list[bytes]:
        """An order -> the grids of the prosumers it allocates to (cancellations too: they withdraw relief)."""
        order = decode_as(serde, value, orders, "FlexOrder")
        if errors := check_flex_order(order, None):
            raise InvalidRecord("FlexOrder", errors)
        return [
            g.encode() for g in sorted({grid_for(a["prosumer_id"]) for a in order["allocations"]} - {None})
        ]

    def interval_to_grid(_key: bytes | None, value: bytes) -> list[bytes]:
        """An interval -> the grid of its prosumer (none for a prosumer on no configured grid)."""
        rec = decode_as(serde, value, intervals, "IntervalEnergy")
        c = Checker()
        if not c.identifier("prosumer_id", rec.get("prosumer_id")):
            raise InvalidRecord("IntervalEnergy", c.errors)
        grid = grid_for(rec["prosumer_id"])
        return [grid.encode()] if grid else []

    def make(views: dict[str, View]) -> CongestionProcessor:
        models, engines = {}, {}
        if (
            configs
        ):  # pandapower and power-grid-model load only when a grid is configured (seconds of imports)
            from streams.grid.model import build_grid_model
            from streams.grid.pgm_engine import PgmEngine

            models = {g: build_grid_model(c) for g, c in configs.items()}
            engines = {g: PgmEngine(m) for g, m in models.items()}
        return CongestionProcessor(
            Serde(settings),
            models,
            engines,
            names,
            horizon_slots=settings.grid_horizon_slots,
            dso=dso,
            limits=Limits.from_settings(settings),
            grace_ms=settings.grid_relief_grace_ms,
            corrections_ms=settings.grid_relief_corrections_ms,
        )

    rekey = {forecasts: to_grid}
    if relief:
        rekey |= {orders: order_to_grids, intervals: interval_to_grid}
    return StageSpec(
        name=STAGE,
        inputs=tuple(rekey),
        outputs=tuple(t for t in (names.congestion, names.requests, names.relief) if t),
        make=make,
        rekey=rekey,
        tick_ms=TICK_MS,
        description="Congestion forecast per grid: loading, voltage band and overload per congestion point and slot; "
        "proof of relief of the orders (expected, then measured)",
    )
