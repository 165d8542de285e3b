"""Topology agent ``flex_prosumers`` (runtime stage ``flex-prosumers``): readings re-keyed by prosumer and order
allocations -> deviations, settlements, device set-points and per-prosumer status for the area desk.

The hot path of flex: every raw reading of the platform passes the re-key, which drops at once what flex cannot
use (not a net active power reading, or of a prosumer that is not enrolled in ``flex.enrolments.v1``, read whole as
a registry view) by peeking at the Avro bytes (:mod:`streams.flex.reading_key`); only enrolled prosumers' readings
reach the repartition topic and the processor (:mod:`streams.flex.prosumer_stage`).
"""

from __future__ import annotations

import logging
from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import topic_names

log = logging.getLogger(__name__)
STAGE = "flex-prosumers"
TOPIC_ENROLMENTS = "flex.enrolments.v1"


def stage(settings: Settings, topology: Any, **processor_options: Any) -> StageSpec:
    """The stage; ``processor_options`` go to :class:`~streams.flex.prosumer_stage.FlexProsumerProcessor` (tests:
    ``clock``, ``params``)."""
    from streams.flex.desk import TOPIC_COMMANDS, TOPIC_DEVIATIONS, TOPIC_SETTLEMENTS
    from streams.flex.enrolled import EnrolledRegistry, StageEnrolment
    from streams.flex.prosumer_stage import (
        TOPIC_ALLOCATIONS,
        TOPIC_READINGS,
        TOPIC_STATUS,
        FlexProsumerProcessor,
    )
    from streams.flex.reading_key import net_power_prosumer

    names = topic_names(topology)
    serde = Serde(settings)
    shared = StageEnrolment()

    def rekey_reading(_key: bytes | None, value: bytes) -> list[bytes]:
        pid = net_power_prosumer(value, serde)
        return [pid.encode()] if pid is not None and shared.get(pid) is not None else []

    def make(views: dict[str, View]) -> FlexProsumerProcessor:
        shared.enrolled = EnrolledRegistry(views.get(names[TOPIC_ENROLMENTS]), serde)
        return FlexProsumerProcessor(serde, shared.enrolled, names, **processor_options)

    return StageSpec(
        STAGE,
        inputs=(names[TOPIC_READINGS], names[TOPIC_ALLOCATIONS]),
        outputs=tuple(names[t] for t in (TOPIC_DEVIATIONS, TOPIC_SETTLEMENTS, TOPIC_COMMANDS, TOPIC_STATUS)),
        make=make,
        rekey={names[TOPIC_READINGS]: rekey_reading},
        views=(names[TOPIC_ENROLMENTS],),
        tick_ms=1000,
        description="flex per prosumer: verification, settlement, set-points, status for the area desk",
    )
