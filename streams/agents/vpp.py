"""Topology agent ``vpp``: asset registry, capability requests, forecasts, baselines and PV degradation ->
capability answers and 30-minute export capacity.

:func:`stage` is the stage on the stream runtime (:mod:`streams.vpp.stage`: state per asset, forecast entity and
VPP, joined through the internal topic ``vpp.links.v1``; export timers on the runtime's ticks). :func:`register`
still hosts the previous StatefulLoop (:mod:`streams.vpp.stream`) until ``edream run`` starts stages.

Export schedule and prices come from ``<EDREAM_DATA_DIR>/vpp.yaml`` when present (see
:class:`~streams.vpp.processor.VppConfig`), else the defaults. The compacted registry ``vpp.assets.v1`` and the
compacted ``vpp.pv.degradation.v1`` (latest estimate per PV asset, also in the snapshot) are re-read from the
beginning on every start. ``GET /api/vpp/pv-history?device_id=D`` serves a PV meter's 15-minute intervals from
the platform's ClickHouse to ``edream vpp degradation``.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from streams.agents.runtime import host_stateful, topics
from streams.app import AgentContext
from streams.hosting import topic_names
from streams.vpp.events import TOPIC_CAPABILITY, TOPIC_EXPORT
from streams.vpp.links import TOPIC_LINKS
from streams.vpp.processor import VppProcessor, load_config
from streams.vpp.pv_degradation import TOPIC_DEGRADATION, history_sql, intervals_table
from streams.vpp.registry import TOPIC_ASSETS
from streams.vpp.stage import INPUTS, VppStage, state_key_of
from streams.vpp.stream import INPUT_TOPICS, VppStream

#: wall-clock ticks per partition; exports are due on ``export_every_minutes`` periods (30 min by default)
TICK_MS = 1_000


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The vpp stage for the runtime: inputs re-keyed to asset, entity or VPP ids (see :mod:`streams.vpp.stage`),
    links both written and read, ticks every :data:`TICK_MS`; ``vpp.yaml`` in the config dir (default: the data dir) is read once here."""
    names = topic_names(topology)
    config = load_config(settings.config_dir)
    serde = Serde(settings)
    inputs = {canonical: names.get(canonical, canonical) for canonical in INPUTS}
    links = names.get(TOPIC_LINKS, TOPIC_LINKS)
    return StageSpec(
        name="vpp",
        inputs=(*inputs.values(), links),
        outputs=(names.get(TOPIC_CAPABILITY, TOPIC_CAPABILITY), names.get(TOPIC_EXPORT, TOPIC_EXPORT), links),
        make=lambda views: VppStage(Serde(settings), config, names),
        rekey={topic: state_key_of(serde, topic, canonical) for canonical, topic in inputs.items()},
        tick_ms=TICK_MS,
        description="VPP capability answers and export capacity per vpp_id",
    )


def register(app: Any, ctx: AgentContext) -> None:
    names = topics(ctx)

    def make(serde: Serde, blob: bytes | None) -> VppStream:
        config = load_config(ctx.settings.edream_data_dir)
        if blob:
            return VppStream.restore(serde, blob, names, config)
        return VppStream(serde, VppProcessor(config), names)

    host_stateful(app, ctx, "vpp", INPUT_TOPICS, make, replay_from_start=[TOPIC_ASSETS, TOPIC_DEGRADATION])

    @app.page("/api/vpp/pv-history")
    async def pv_history(web: Any, request: Any) -> Any:
        """A meter's 15-minute intervals for ``edream vpp degradation`` (the embedded chDB is this process's):
        rows of ``[interval_start ms, interval_end ms, export_wh, completeness]``."""
        device = request.query.get("device_id", "")
        if not device:
            return web.json({"error": "query parameter device_id is required"}, status=400)
        table = intervals_table(ctx.topology)
        if ctx.clickhouse is None or table is None:
            return web.json({"error": "no ClickHouse intervals table in this platform"}, status=503)

        def query() -> list[list[Any]]:
            res = ctx.clickhouse.query(history_sql(table), parameters={"device": device})
            return [list(r) for r in res.result_rows]

        rows = await ctx.in_clickhouse_thread(query)
        return web.json({"device_id": device, "table": table, "rows": rows})
