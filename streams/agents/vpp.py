"""Topology agent ``vpp``: asset registry, capability requests, forecasts and baselines -> capability answers
and 30-minute export capacity (see :mod:`streams.vpp.stream` and :mod:`streams.vpp.processor`).

Export schedule and prices come from ``<EDREAM_DATA_DIR>/vpp.yaml`` when present (see
:class:`~streams.vpp.processor.VppConfig`), else the defaults. The compacted registry ``vpp.assets.v1`` is
re-read from the beginning on every start.
"""

from __future__ import annotations

from typing import Any

from edream.serde import Serde
from streams.agents.runtime import host_stateful, topics
from streams.app import AgentContext
from streams.vpp.processor import VppProcessor, load_config
from streams.vpp.registry import TOPIC_ASSETS
from streams.vpp.stream import INPUT_TOPICS, VppStream


def register(app: Any, ctx: AgentContext) -> None:
    names = topics(ctx)

    def make(serde: Serde, blob: bytes | None) -> VppStream:
        config = load_config(ctx.settings.edream_data_dir)
        if blob:
            return VppStream.restore(serde, blob, names, config)
        return VppStream(serde, VppProcessor(config), names)

    host_stateful(app, ctx, "vpp", INPUT_TOPICS, make, replay_from_start=[TOPIC_ASSETS])
