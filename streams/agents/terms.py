"""Topology agent ``terms``: DR contract terms of ``flex.enrolments.v1`` registered in ``ContractTermsRegistry``.

Thin wiring: builds a :class:`~streams.anchoring.terms_agent.TermsAgent` (its own confluent-kafka consumer group,
blocking web3 calls) and hosts it on its own thread with :func:`streams.hosting.host`, like the anchoring agent.
The build is retried while the chain is unreachable; afterwards chain errors are retried with backoff by the
agent itself.
"""

from __future__ import annotations

from typing import Any

from streams.hosting import bootstrap_of, host, topic_names


def register(app: Any, ctx: Any) -> None:
    """Start the terms-registration thread with the Faust worker; stop it with the worker."""
    from streams.anchoring.service import connect_terms
    from streams.anchoring.terms_agent import ENROLMENTS_TOPIC, RECEIPTS_TOPIC, TermsAgent, TermsRegistrar
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
