"""Topology agent ``anchoring``: settlement windows anchored once on Ethereum, as a stage of the one runtime.

:func:`stage` wires :class:`~streams.anchoring.processor.AnchoringProcessor`: both settlement topics re-keyed to
``<kind>:<window_id>`` of their anchor window (``ANCHOR_WINDOW_MINUTES``), ticks every
:data:`TICK_MS` close the windows whose end + ``ANCHOR_GRACE_MINUTES`` has passed, once the stage has processed
everything that was on its inputs (at most :data:`TICK_HOLD_MS` late). Outputs: ``AnchorReceipt`` s
(ClickHouse ``chain_anchors``), the windows' manifests (``chain_anchor_leaves``) and rejections.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import topic_names

__all__ = ["TICK_MS", "stage"]

SETTLEMENT_TOPICS = ("settlement.flex.v1", "settlement.market.v1")
RECEIPTS_TOPIC = "chain.anchor.receipts.v1"
LEAVES_TOPIC = "chain.anchor.leaves.v1"
REJECTIONS_TOPIC = "platform.rejections.v1"
#: how often due windows are looked at (a window waits at most this long after its end + grace), ms
TICK_MS = 5_000
MINUTE_MS = 60_000
#: a window is closed only once every settlement that was on the inputs has been processed (a restarted or
#: lagging stage, or a second worker still re-keying its share, must not close it early), but at most this late
TICK_HOLD_MS = 10 * MINUTE_MS


def stage(settings: Settings, topology: Any) -> StageSpec:
    from streams.anchoring.anchorer import AnchorConfig, Anchorer
    from streams.anchoring.processor import AnchoringProcessor, AnchoringTopics, WindowTiming, window_of
    from streams.anchoring.service import connect
    from streams.validation.limits import Limits

    names = topic_names(topology)
    limits = Limits.from_settings(settings)
    timing = WindowTiming(
        period_ms=round(settings.anchor_window_minutes * MINUTE_MS),
        grace_ms=round(settings.anchor_grace_minutes * MINUTE_MS),
        retain_ms=limits.max_past_ms + limits.max_future_ms,
    )
    topics = AnchoringTopics(names[RECEIPTS_TOPIC], names[LEAVES_TOPIC], names[REJECTIONS_TOPIC])
    inputs = tuple(names[t] for t in SETTLEMENT_TOPICS)
    serde = Serde(settings)
    # one confirmation wait must stay well inside the consumer's max.poll.interval (300 s)
    config = AnchorConfig(max_attempts=1, receipt_timeout_s=60.0, confirm_timeout_s=60.0)

    def anchorer() -> Anchorer:
        return Anchorer(connect(settings, sign=True, deploy_if_missing=not settings.eth_rpc_url), config)

    def make(views: dict) -> AnchoringProcessor:
        return AnchoringProcessor(Serde(settings), topics, timing, anchorer, limits)

    return StageSpec(
        name="anchoring",
        inputs=inputs,
        outputs=(topics.receipts, topics.leaves, topics.rejections),
        make=make,
        rekey={t: window_of(serde, timing) for t in inputs},
        tick_ms=TICK_MS,
        ticks_wait_for_inputs_ms=TICK_HOLD_MS,
        description="Merkle root per settlement kind and window, anchored once on Ethereum",
    )
