"""Topology agent ``terms``: DR contract terms of ``flex.enrolments.v1`` registered in ``ContractTermsRegistry``.

:func:`stage` wires :class:`~streams.anchoring.terms_processor.TermsProcessor` as a stage of the one runtime: the
enrolment topic (keyed by prosumer) is its input and also its registry view (read whole, so superseded enrolments
are never registered); ticks every :data:`TICK_MS` register a batch of pending prosumers per partition.
"""

from __future__ import annotations

from typing import Any

from edream.runtime.contract import StageSpec
from edream.settings import Settings
from edream.topology import AgentTopics

#: period of the registration ticks, ms
TICK_MS = 2_000
#: prosumers registered per partition and tick (their transactions are sent together, then awaited once)
BATCH = 50


def stage(settings: Settings, topology: Any) -> StageSpec:
    from edream.serde import Serde
    from streams.anchoring.service import connect_terms
    from streams.anchoring.terms_processor import STAGE, TermsProcessor
    from streams.anchoring.terms_registrar import TermsConfig, TermsRegistrar
    from streams.validation.limits import Limits

    topics = AgentTopics(topology, STAGE)  # its topics as topology.yaml declares them for agent ``terms``
    enrolments, receipts = topics.input("FlexEnrolment"), topics.output("TermsReceipt")
    deadletter = topics.output("DeadLetter")
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
            deadletter,
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
