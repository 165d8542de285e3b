"""Topology agent ``terms``: DR contract terms of ``flex.enrolments.v1`` registered in ``ContractTermsRegistry``.

:func:`stage` wires :class:`~streams.anchoring.terms_processor.TermsProcessor` as a stage of the one runtime: the
enrolment topic (keyed by prosumer) is its input and also its registry view (read whole, so superseded enrolments
are never registered); ticks every :data:`TICK_MS` register a batch of pending prosumers per partition.

``register`` (the previous thread hosting of :class:`~streams.anchoring.terms_agent.TermsAgent`) stays until the
platform runs every stage through the runtime.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.settings import Settings
from streams.hosting import bootstrap_of, host, topic_names

ENROLMENTS_TOPIC = "flex.enrolments.v1"
RECEIPTS_TOPIC = "chain.terms.receipts.v1"
#: period of the registration ticks, ms
TICK_MS = 2_000
#: prosumers registered per partition and tick (their transactions are sent together, then awaited once)
BATCH = 50


def stage(settings: Settings, topology: Any) -> StageSpec:
    from edream.serde import Serde
    from streams.anchoring.service import connect_terms
    from streams.anchoring.terms_agent import TermsConfig, TermsRegistrar
    from streams.anchoring.terms_processor import STAGE, TermsProcessor
    from streams.deadletter import DEADLETTER_TOPIC
    from streams.validation.limits import Limits

    names = topic_names(topology)
    enrolments, receipts = names[ENROLMENTS_TOPIC], names[RECEIPTS_TOPIC]
    # every wait must stay well inside the consumer's max.poll.interval (300 s)
    config = TermsConfig(receipt_timeout_s=60.0, confirm_timeout_s=60.0, pending_timeout_s=30.0)

    def registrar() -> TermsRegistrar:
        return TermsRegistrar(
            connect_terms(settings, sign=True, deploy_if_missing=not settings.eth_rpc_url), config
        )

    def make(views: dict) -> TermsProcessor:
        return TermsProcessor(
            Serde(settings),
            receipts,
            names[DEADLETTER_TOPIC],
            registrar,
            Limits.from_settings(settings),
            registry=views.get(enrolments),
            batch=BATCH,
        )

    return StageSpec(
        name=STAGE,
        inputs=(enrolments,),
        outputs=(receipts,),
        make=make,
        views=(enrolments,),
        tick_ms=TICK_MS,
        description="Hash of each prosumer's DR contract terms registered once per version in ContractTermsRegistry",
    )


def register(app: Any, ctx: Any) -> None:
    """Start the terms-registration thread with the Faust worker; stop it with the worker."""
    from streams.anchoring.service import connect_terms
    from streams.anchoring.terms_agent import TermsAgent, TermsRegistrar
    from streams.deadletter import DEADLETTER_TOPIC

    def build() -> TermsAgent:
        settings = ctx.settings.model_copy(update={"kafka_bootstrap_servers": bootstrap_of(app)})
        client = connect_terms(settings, sign=True, deploy_if_missing=not settings.eth_rpc_url)
        names = topic_names(ctx.topology)  # follow the loaded topology's topic names
        return TermsAgent(
            settings,
            TermsRegistrar(client),
            topic=names[ENROLMENTS_TOPIC],
            receipts_topic=names[RECEIPTS_TOPIC],
            deadletter_topic=names[DEADLETTER_TOPIC],
        )

    host(app, "terms", build)
