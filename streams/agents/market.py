"""Topology agent ``market``: participants, orders and intervals -> accepted orders, clearing, trades, settlement.

Market parameters come from ``<EDREAM_DATA_DIR>/market.yaml`` when present (see
:class:`~streams.market.config.MarketConfig`), else the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edream.serde import Serde
from streams.agents.runtime import host_stateful, topics
from streams.app import AgentContext
from streams.market.config import MarketConfig
from streams.market.processor import MarketProcessor
from streams.market.stream import INPUT_TOPICS, MarketStream


def market_config(data_dir: Path) -> MarketConfig:
    path = Path(data_dir) / "market.yaml"
    return MarketConfig.from_yaml(path) if path.exists() else MarketConfig()


def register(app: Any, ctx: AgentContext) -> None:
    names = topics(ctx)

    def make(serde: Serde, blob: bytes | None) -> MarketStream:
        if blob:
            return MarketStream.restore(serde, blob, names)
        return MarketStream(serde, MarketProcessor(market_config(ctx.settings.edream_data_dir)), names)

    host_stateful(app, ctx, "market", INPUT_TOPICS, make)
