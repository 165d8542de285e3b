"""Topology agent ``flex``: enrolments, DSO requests and readings -> offers, orders, deviations, settlements.

Hosts :class:`~streams.flex.service.FlexService` on a worker thread. The desk's registry is rebuilt from the
compacted enrolments topic on every start; the slot outlook is the flat simulator outlook until a
baseline-backed outlook exists.
"""

from __future__ import annotations

from typing import Any

from streams.agents.runtime import group_id, host, topics, worker_settings
from streams.app import AgentContext


def register(app: Any, ctx: AgentContext) -> None:
    from streams.flex.desk import FlexDesk
    from streams.flex.enrolment import Registry
    from streams.flex.service import FlexService, FlexTopics
    from streams.flex.sim import flat_outlook

    names = topics(ctx)
    flex_topics = FlexTopics(**{f: names[getattr(FlexTopics, f)] for f in FlexTopics.__dataclass_fields__})

    def build() -> FlexService:
        settings = worker_settings(app, ctx)
        return FlexService(
            FlexDesk(Registry(), flat_outlook),
            settings,
            settings.kafka_bootstrap_servers,
            topics=flex_topics,
            group_id=group_id(settings, "flex"),
        )

    host(app, "flex", build)
