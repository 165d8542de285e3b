"""Topology agent ``market``: orders and intervals (participants as a registry view) -> accepted orders, clearing,
trades, settlement, rejections, as a runtime stage (:func:`stage`).

State is per market session (one delivery slot) in the partition that owns the session id: the book, the
nonces, the session's clock, the trades and the delivery data that settle them
(:mod:`streams.market.session_state`). 15-min intervals (keyed by prosumer) are re-keyed to the session of their slot, orders to their session id (through the runtime's
partitioner, see :func:`~streams.market.stream.order_session_keys`); participants are a view every worker
reads whole.

Market parameters come from ``market.yaml`` in the config dir (``EDREAM_CONFIG_DIR``, default the data dir; a worker passes its platform's on) when present (see
:class:`~streams.market.config.MarketConfig`), else the defaults.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import AgentTopics
from streams.market.config import MarketConfig
from streams.market.participants import ParticipantView
from streams.market.processor import (
    TOPIC_CLEARING,
    TOPIC_ORDERS_ACCEPTED,
    TOPIC_REJECTIONS,
    TOPIC_SETTLEMENT,
    TOPIC_TRADES,
    MarketProcessor,
)
from streams.market.stream import (
    INTERVALS_TOPIC,
    ORDERS_TOPIC,
    PARTICIPANTS_TOPIC,
    MarketStage,
    interval_session_keys,
    order_session_keys,
)

NAME = "market"
#: gates close within this long of their time when no order arrives (ms)
TICK_MS = 1000
#: a gate is closed by a tick only once the stage has processed every order that was on its inputs (a restarted
#: or lagging worker, or one whose orders are still being re-keyed, must not clear a session early), at most
#: this late (UTC ms)
TICK_HOLD_MS = 120_000


def market_config(data_dir: Path) -> MarketConfig:
    path = Path(data_dir) / "market.yaml"
    return MarketConfig.from_yaml(path) if path.exists() else MarketConfig()


def stage(settings: Settings, topology: Any, config: MarketConfig | None = None) -> StageSpec:
    """The market stage on the topics topology.yaml declares for agent ``market``, found by the contract each
    carries (``config``: default ``market.yaml``)."""
    topics = AgentTopics(topology, NAME)
    #: the processor's canonical topic names -> the declared topics
    names = {
        ORDERS_TOPIC: topics.input("MarketOrder"),
        INTERVALS_TOPIC: topics.input("IntervalEnergy"),
        PARTICIPANTS_TOPIC: topics.input("MarketParticipant"),
        TOPIC_ORDERS_ACCEPTED: topics.output("MarketOrder"),
        TOPIC_CLEARING: topics.output("ClearingResult"),
        TOPIC_TRADES: topics.output("Trade"),
        TOPIC_SETTLEMENT: topics.output("Settlement"),
        TOPIC_REJECTIONS: topics.output("Rejection"),
    }
    cfg = config or market_config(settings.config_dir)
    serde = Serde(settings)
    participants = names[PARTICIPANTS_TOPIC]

    def make(views: dict[str, View]) -> MarketStage:
        registry = ParticipantView(views[participants], serde.decode)
        return MarketStage(MarketProcessor(cfg, registry), serde, names)

    outputs = (TOPIC_ORDERS_ACCEPTED, TOPIC_CLEARING, TOPIC_TRADES, TOPIC_SETTLEMENT, TOPIC_REJECTIONS)
    return StageSpec(
        name=NAME,
        inputs=(names[ORDERS_TOPIC], names[INTERVALS_TOPIC]),
        outputs=tuple(names[t] for t in outputs),
        make=make,
        rekey={
            names[ORDERS_TOPIC]: partial(order_session_keys, serde),
            names[INTERVALS_TOPIC]: partial(interval_session_keys, cfg, serde),
        },
        views=(participants,),
        tick_ms=TICK_MS,
        ticks_wait_for_inputs_ms=TICK_HOLD_MS,
        description="P2P market per session: validation, gate closure on event time, clearing, settlement",
    )
