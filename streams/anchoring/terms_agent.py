"""Kafka wiring of DR contract-terms registration: ``flex.enrolments.v1`` in, ``ContractTermsRegistry`` +
``chain.terms.receipts.v1`` out.

:class:`TermsRegistrar` brings the chain to the wanted versions (:mod:`streams.anchoring.terms`): it waits until
the signing account has no unmined transaction, reads each contract's latest version, sends ``register`` only
where :func:`~streams.anchoring.terms.needs_registration` says so, waits for the receipts and N confirmations,
re-reads the chain and returns one ``TermsReceipt`` per enrolment (also for versions already on-chain, so a run
that crashed before publishing publishes the same receipt, same ``event_id``, on replay).

:class:`TermsAgent` reads the compacted enrolment topic **from the beginning on every (re)assignment** with its own
consumer group (the registry is small, and a chain that lost its state gets everything registered again), and
collapses it to the last record per prosumer. Records of a partition are acted on only once that partition has
been read to its end since assignment (``PARTITION_EOF``), so superseded enrolments still in the not yet
compacted log are never registered again. Offsets are committed only after the registrations of the batch are
confirmed and their receipts delivered. Chain errors (unreachable node, timeouts) keep the batch pending and
are retried with capped exponential backoff (``step`` never sleeps: it keeps polling); undecodable or invalid
enrolments and contract refusals of one record go to the dead-letter topic. An unauthorised key (``NotWriter``)
raises :class:`TermsRejected`, which stops the hosted loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from web3.exceptions import ContractLogicError

from edream.kafka import consumer_config, producer_config
from edream.serde import DecodeError, Serde
from edream.settings import Settings
from streams.anchoring.agent import ConsumerAgent
from streams.anchoring.artifacts import revert_reason
from streams.anchoring.terms import (
    OnChainTerms,
    TermsError,
    TermsVersion,
    needs_registration,
    terms_receipt,
    version_from_event,
)
from streams.anchoring.terms_chain import CONTRACT_NAME, TermsRegistryClient
from streams.deadletter import DEADLETTER_TOPIC, dead_letter

log = logging.getLogger(__name__)

ENROLMENTS_TOPIC = "flex.enrolments.v1"
RECEIPTS_TOPIC = "chain.terms.receipts.v1"
#: refusals that no other record could pass either: configuration problems, not bad records
FATAL_REFUSALS = frozenset({"NotWriter"})


class TermsRejected(RuntimeError):
    """The contract refuses every registration of this key (e.g. ``NotWriter``): retrying cannot help."""


@dataclass(frozen=True)
class TermsConfig:
    """Confirmations N (the mining block counts as 1); timeouts and backoff in seconds."""

    confirmations: int = 2
    receipt_timeout_s: float = 120.0
    confirm_timeout_s: float = 600.0
    pending_timeout_s: float = 120.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass
class Outcome:
    """What :meth:`TermsRegistrar.register_all` did: receipts (new or already on-chain), refused records
    (with the contract's reason) and how many transactions it sent."""

    receipts: list[dict[str, Any]] = field(default_factory=list)
    refused: list[tuple[TermsVersion, str]] = field(default_factory=list)
    sent: int = 0


class TermsRegistrar:
    """Registers wanted versions through one :class:`TermsRegistryClient` (one attempt per call)."""

    def __init__(self, client: TermsRegistryClient, config: TermsConfig | None = None):
        self.client = client
        self.config = config or TermsConfig()
        self.sent_txs: list[str] = []

    def register_all(self, wanted: Sequence[TermsVersion]) -> Outcome:
        """Bring each contract in ``wanted`` (at most one entry per contract) to its wanted version.

        Raises on chain errors (nothing is lost: the caller retries the same list) and :class:`TermsRejected`
        on a refusal no record can pass."""
        c, cfg, out = self.client, self.config, Outcome()
        c.wait_no_pending(cfg.pending_timeout_s)
        sent: list[tuple[TermsVersion, str]] = []
        existing: list[tuple[TermsVersion, OnChainTerms]] = []
        for v in wanted:
            latest = c.latest(v.contract_id)
            if not needs_registration(v, latest):
                assert latest is not None
                existing.append((v, latest))
                continue
            try:
                tx_hash = c.send_register(v)
            except Exception as exc:  # gas estimation runs the call: a revert surfaces here
                reason = revert_reason(exc, CONTRACT_NAME)
                if reason in FATAL_REFUSALS:
                    raise TermsRejected(f"contract refused registration: {reason}") from exc
                if reason is not None or isinstance(exc, ContractLogicError):
                    out.refused.append((v, f"contract refused registration: {reason or exc}"))
                    continue
                raise  # transport problem: retried by the caller
            self.sent_txs.append(tx_hash)
            out.sent += 1
            sent.append((v, tx_hash))
        done: list[tuple[TermsVersion, OnChainTerms, str]] = []
        for v, tx_hash in sent:
            receipt = c.wait_receipt(tx_hash, cfg.receipt_timeout_s)
            version = c.registered_version(receipt) if receipt["status"] == 1 else None
            if version is None:
                raise RuntimeError(f"{v.contract_ref}: register transaction {tx_hash} reverted")
            done.append((v, c.get_terms(v.contract_id, version), tx_hash))
        for v, on_chain in existing:
            tx = c.find_register_tx(v.contract_id, on_chain.version, on_chain.block_number)
            if tx is None:
                raise RuntimeError(f"{v.contract_ref} v{on_chain.version}: no TermsRegistered event found")
            done.append((v, on_chain, tx.tx_hash))
        if not done:
            return out
        c.wait_confirmations(
            max(t.block_number for _, t, _ in done), cfg.confirmations, cfg.confirm_timeout_s
        )
        chain_id, head = c.chain_id, c.w3.eth.block_number
        for v, on_chain, tx_hash in done:
            again = c.get_terms(
                v.contract_id, on_chain.version
            )  # re-read after confirmations: survives a reorg
            if again.terms_hash != v.terms_hash:
                raise RuntimeError(
                    f"{v.contract_ref} v{on_chain.version} changed after confirmation (reorg?)"
                )
            out.receipts.append(
                terms_receipt(
                    v,
                    again,
                    chain_id=chain_id,
                    contract_address=c.address,
                    tx_hash=tx_hash,
                    confirmations=head - again.block_number + 1,
                    registered_at=c.block_timestamp_ms(again.block_number),
                )
            )
        return out


@dataclass
class _Pending:
    version: TermsVersion
    tp: tuple[str, int]
    offset: int
    key: bytes | None
    value: bytes | None


class TermsAgent(ConsumerAgent):
    """One consumer-group member; call :meth:`step` in a loop (the platform hosts it on its own thread)."""

    def __init__(
        self,
        settings: Settings,
        registrar: TermsRegistrar,
        topic: str = ENROLMENTS_TOPIC,
        receipts_topic: str = RECEIPTS_TOPIC,
        deadletter_topic: str = DEADLETTER_TOPIC,
        group_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        """``clock`` (monotonic seconds) paces the retry backoff."""
        self.registrar = registrar
        self.serde = Serde(settings)
        self.topic, self.receipts_topic, self.deadletter_topic = topic, receipts_topic, deadletter_topic
        self.clock = clock
        conf = consumer_config(settings, group_id or f"{settings.edream_app_id}-terms")
        conf["enable.partition.eof"] = True
        self.consumer = Consumer(conf)
        self.consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.producer = Producer(producer_config(settings))
        self.pending: dict[str, _Pending] = {}
        self.caught_up: set[tuple[str, int]] = set()
        self.consumed: dict[tuple[str, int], int] = {}
        self.receipts: list[dict[str, Any]] = []
        self.failures = 0
        self.last_error: str | None = None
        self._committed: dict[tuple[str, int], int] = {}
        self._retry_at = 0.0
        self._delay = registrar.config.backoff_initial_s

    # -- rebalance: every assignment re-reads the registry from the beginning ----------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for p in partitions:
            p.offset = OFFSET_BEGINNING
            self.caught_up.discard((p.topic, p.partition))
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(p.topic, p.partition) for p in partitions}
        self.pending = {k: p for k, p in self.pending.items() if p.tp not in gone}
        self.caught_up -= gone
        for tp in gone:
            self.consumed.pop(tp, None)

    # -- loop -------------------------------------------------------------------------------------------
    def step(self, timeout_s: float = 1.0, max_messages: int = 500) -> list[dict[str, Any]]:
        """Consume one batch; once a partition is read to its end, register its pending enrolments (unless
        backing off after a chain error), publish receipts, commit. Returns the receipts published now."""
        for msg in self.consumer.consume(max_messages, timeout_s):
            tp = (msg.topic(), msg.partition())
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    self.caught_up.add(tp)
                else:
                    log.warning("terms consumer error: %s", err)
                continue
            self.consumed[tp] = msg.offset() + 1
            self._add(msg, tp)
        ready = [p for p in self.pending.values() if p.tp in self.caught_up]
        if not ready or self.clock() < self._retry_at:
            self._commit()
            return []
        try:
            outcome = self.registrar.register_all([p.version for p in ready])
        except TermsRejected:
            raise
        except Exception as exc:  # noqa: BLE001 - chain unreachable / timeout: keep pending, back off
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "registering %d contract terms failed (attempt %d): %s; retrying in %.1fs",
                len(ready),
                self.failures,
                self.last_error,
                self._delay,
            )
            self._retry_at = self.clock() + self._delay
            self._delay = min(self._delay * 2, self.registrar.config.backoff_max_s)
            return []
        self._delay = self.registrar.config.backoff_initial_s
        by_id = {p.version.prosumer_id: p for p in ready}
        for v, reason in outcome.refused:
            p = by_id[v.prosumer_id]
            log.error("%s: %s", v.contract_ref, reason)
            self._dead_letter(p.tp, p.offset, p.key, p.value, reason, "ContractRefused")
        for r in outcome.receipts:
            self.producer.produce(
                self.receipts_topic,
                key=r["prosumer_id"].encode(),
                value=self.serde.encode("TermsReceipt", r, self.receipts_topic),
            )
        for p in ready:
            self.pending.pop(p.version.prosumer_id, None)
        if outcome.sent:
            log.info("registered %d contract terms on-chain", outcome.sent)
        self._commit()
        self.receipts.extend(outcome.receipts)
        return outcome.receipts

    def _add(self, msg: Any, tp: tuple[str, int]) -> None:
        try:
            _, event = self.serde.decode(msg.value(), msg.topic())
            if "record_json" not in event:
                raise DecodeError(f"not a FlexEnrolment record (fields {sorted(event)})")
            version = version_from_event(event)
        except (DecodeError, TermsError) as exc:
            self._dead_letter(tp, msg.offset(), msg.key(), msg.value(), exc)
            return
        self.pending[version.prosumer_id] = _Pending(version, tp, msg.offset(), msg.key(), msg.value())

    def _dead_letter(
        self,
        tp: tuple[str, int],
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error: BaseException | str,
        error_type: str | None = None,
    ) -> None:
        dl = dead_letter(tp[0], tp[1], offset, key, value, "terms", error, error_type)
        self.producer.produce(
            self.deadletter_topic,
            key=tp[0].encode(),
            value=self.serde.encode("DeadLetter", dl, self.deadletter_topic),
        )

    def _commit(self) -> None:
        """Deliver what was produced, then commit each partition up to its first still-pending record."""
        self.producer.flush(30)
        points = {}
        for tp, nxt in self.consumed.items():
            held = [p.offset for p in self.pending.values() if p.tp == tp]
            points[tp] = min([nxt, *held])
        if points and points != self._committed:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in points.items()], asynchronous=False
            )
            self._committed = points


def latest_enrolment(
    settings: Settings, bootstrap: str, topic: str, prosumer_id: str, timeout_s: float = 30.0
) -> dict[str, Any] | None:
    """The last decodable ``FlexEnrolment`` with key ``prosumer_id`` on ``topic`` (read to the end of every
    partition, no consumer group join), or None. Raises TimeoutError if the end is not reached in time."""
    import uuid

    serde = Serde(settings)
    conf = consumer_config(settings, f"edream-verify-{uuid.uuid4().hex[:8]}", bootstrap)
    conf["enable.partition.eof"] = True
    c = Consumer(conf)
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise LookupError(f"topic {topic} not found")
        parts = set(meta.partitions)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        wanted, found = prosumer_id.encode(), None
        deadline = time.monotonic() + timeout_s
        while parts:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(parts)} not read to the end in {timeout_s}s")
            for m in c.consume(500, 0.5):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        parts.discard(m.partition())
                    continue
                if m.key() != wanted:
                    continue
                try:
                    _, rec = serde.decode(m.value(), topic)
                except DecodeError:
                    continue
                found = rec
        return found
    finally:
        c.close()
