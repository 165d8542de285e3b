"""Topology agent ``flex`` (runtime stage ``flex``): the per-area flexibility desk. Signed DSO requests and
acceptances of offers, the DSO and enrolment registries, baselines, forecasts, per-prosumer status and projected
shortfalls -> offers, orders (with re-dispatch revisions), rejections and per-prosumer allocations for the
``flex-prosumers`` stage.

Every input but the enrolments is re-keyed by congestion area (:mod:`streams.flex.area_stage`): requests,
acceptances and status records name their area; baselines and forecasts are keyed by their prosumer and deviations
name one, whose area comes from the enrolment view. A record of a prosumer that is not enrolled, a portfolio
forecast or a deviation that is not a PROJECTED SHORTFALL is dropped before the repartition hop; baselines and
forecasts are routed by their message key without being decoded, and the desk dead-letters one whose prosumer is
not enrolled in the area it reached (a record under another prosumer's key). An undecodable record reaches the
processor unread and is dead-lettered there with the reason.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec, View
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import topic_names

STAGE = "flex"


def stage(settings: Settings, topology: Any, **processor_options: Any) -> StageSpec:
    """The stage; ``processor_options`` go to :class:`~streams.flex.area_stage.FlexAreaProcessor` (tests:
    ``clock``, ``params``)."""
    from streams.flex.area_stage import (
        INPUTS,
        OUTPUTS,
        TOPIC_ACCEPTANCES,
        TOPIC_BASELINES,
        TOPIC_DEVIATIONS,
        TOPIC_DSOS,
        TOPIC_ENROLMENTS,
        TOPIC_FORECASTS,
        TOPIC_REQUESTS,
        TOPIC_STATUS,
        AreaParams,
        FlexAreaProcessor,
    )
    from streams.flex.dso_view import DsoView
    from streams.flex.enrolled import EnrolledRegistry, StageEnrolment

    names = topic_names(topology)
    serde = Serde(settings)
    shared = StageEnrolment()

    def keys(area: str | None) -> list[bytes]:
        return [area.encode()] if area else []

    if "params" not in processor_options:  # the demo's stand-in for the DSO, off unless FLEX_AUTO_ACCEPT
        processor_options = {**processor_options, "params": AreaParams(auto_accept=settings.flex_auto_accept)}

    def request_area(key: bytes | None, value: bytes) -> list[bytes]:
        return keys(serde.decode(value)[1]["area_id"])

    def prosumer_area(key: bytes | None, value: bytes) -> list[bytes]:
        """Baselines and forecasts are keyed by their prosumer: routed by that key without decoding the value (the
        desk checks the record against it); a record of a prosumer that is not enrolled is dropped here."""
        return keys(shared.area_of(key.decode("utf-8", "replace"))) if key else []

    def shortfall_area(key: bytes | None, value: bytes) -> list[bytes]:
        rec = serde.decode(value)[1]
        if rec.get("kind") != "PROJECTED" or rec.get("verdict") != "SHORTFALL":
            return []
        return keys(shared.area_of(rec["prosumer_id"]))

    def make(views: dict[str, View]) -> FlexAreaProcessor:
        shared.enrolled = EnrolledRegistry(views.get(names[TOPIC_ENROLMENTS]), serde)
        dsos = DsoView(views.get(names[TOPIC_DSOS]), serde)
        return FlexAreaProcessor(serde, shared.enrolled, dsos, names, **processor_options)

    rekey = {
        TOPIC_REQUESTS: request_area,
        TOPIC_ACCEPTANCES: request_area,  # an acceptance names its offer's area too
        TOPIC_BASELINES: prosumer_area,
        TOPIC_FORECASTS: prosumer_area,
        TOPIC_STATUS: request_area,  # a status record names its area too
        TOPIC_DEVIATIONS: shortfall_area,
    }
    return StageSpec(
        STAGE,
        inputs=tuple(names[t] for t in INPUTS),
        outputs=tuple(names[t] for t in OUTPUTS),
        make=make,
        rekey={names[t]: fn for t, fn in rekey.items()},
        views=(names[TOPIC_ENROLMENTS], names[TOPIC_DSOS]),
        tick_ms=1000,
        description="flex per area: offers, orders, re-dispatch, allocations to the per-prosumer stage",
    )
