"""Topology agent ``vpp``: asset registry, capability requests, forecasts, baselines and PV degradation ->
capability answers and 30-minute export capacity.

:func:`stage` is the stage on the stream runtime (:mod:`streams.vpp.stage`: state per asset, forecast entity and
VPP, joined through the internal topic ``vpp.links.v1``; export timers on the runtime's ticks).

Export schedule and prices come from ``<EDREAM_DATA_DIR>/vpp.yaml`` when present (see
:class:`~streams.vpp.processor.VppConfig`), else the defaults.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.vpp.asset_entities import AssetEntities, StageAssets
from streams.vpp.events import TOPIC_CAPABILITY, TOPIC_EXPORT
from streams.vpp.links import TOPIC_LINKS
from streams.vpp.processor import load_config
from streams.vpp.registry import TOPIC_ASSETS
from streams.vpp.stage import INPUTS, VppStage, state_key_of

#: wall-clock ticks per partition; exports are due on ``export_every_minutes`` periods (30 min by default)
TICK_MS = 1_000


def stage(settings: Settings, topology: Any) -> StageSpec:
    """The vpp stage for the runtime: inputs re-keyed to asset, entity or VPP ids (see :mod:`streams.vpp.stage`),
    links both written and read, ticks every :data:`TICK_MS`; ``vpp.yaml`` in the config dir (default: the data dir) is read once here. Its
    topics are those topology.yaml declares for agent ``vpp``, found by the contract each carries."""
    topics = AgentTopics(topology, "vpp")
    inputs = {canonical: topics.input(contract) for canonical, (contract, _) in INPUTS.items()}
    links = topics.input("VppLink")  # written and read back
    #: the stage's canonical topic names -> the declared topics
    names = {
        **inputs,
        TOPIC_LINKS: links,
        TOPIC_CAPABILITY: topics.output("VppCapability"),
        TOPIC_EXPORT: topics.output("VppExportCapacity"),
    }
    config = load_config(settings.config_dir)
    serde = Serde(settings)
    registry = inputs[TOPIC_ASSETS]
    shared = StageAssets()

    def make(views: dict[str, View]) -> VppStage:
        shared.entities = AssetEntities(views.get(registry), serde)
        return VppStage(Serde(settings), config, names)

    return StageSpec(
        name="vpp",
        inputs=(*inputs.values(), links),
        outputs=(names[TOPIC_CAPABILITY], names[TOPIC_EXPORT], topics.output("VppLink")),
        make=make,
        rekey={
            topic: state_key_of(serde, topic, canonical, shared.wanted) for canonical, topic in inputs.items()
        },
        views=(registry,),
        tick_ms=TICK_MS,
        description="VPP capability answers and export capacity per vpp_id",
    )
