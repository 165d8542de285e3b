"""The terms stage's processor: ``flex.enrolments.v1`` (keyed by prosumer) in, ``ContractTermsRegistry``
registrations and ``TermsReceipt`` s out, per prosumer.

* **Records**: decoded, validated (:func:`streams.validation.flex.check_enrolment`, the stated hashes by
  :func:`~streams.anchoring.terms.version_from_event`, ``updated_at`` not ahead of the wall clock), then kept as
  the prosumer's pending enrolment (:class:`~.terms_pending.PendingQueue`; a newer one replaces it). Undecodable or
  invalid enrolments raise, so the runtime dead-letters them with the reason.
* **Ticks**: a batch of at most ``batch`` pending prosumers is registered through
  :class:`~streams.anchoring.terms_registrar.TermsRegistrar` (one transaction per contract that needs it, sent
  together, one wait for receipts and confirmations; versions already on-chain give the same receipt again, same
  ``event_id``), then the receipts are emitted and the batch leaves the queue. A contract refusal of one record is
  dead-lettered (``ContractRefused``); chain outages and an unauthorised key (``NotWriter``) raise
  :class:`~edream.runtime.contract.TransientError` (retried with backoff; nothing leaves the queue).
* **Superseded enrolments are never registered**: the stage also reads the enrolment topic whole as a registry view
  (the latest record per prosumer on the broker). A pending enrolment older than the view's (``updated_at``) is
  dropped. This is what keeps a replay after a crash (records since the last checkpoint processed again, while the
  chain already holds what that run registered) from registering an old version on top of a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from edream.deadletter import dead_letter
from edream.runtime.contract import Emit, KeyValueState, Record, TransientError, View
from edream.serde import DecodeError, Serde
from streams.anchoring.terms import TermsError, TermsVersion, version_from_event
from streams.anchoring.terms_pending import PendingEnrolment, PendingQueue
from streams.anchoring.terms_registrar import TermsRegistrar, TermsRejected
from streams.flex.enrolment import EnrolmentError, record_from_event
from streams.validation.fields import InvalidRecord
from streams.validation.flex import check_enrolment
from streams.validation.limits import Limits

STAGE = "terms"


class TermsProcessor:
    """``registrar`` is called (lazily, once) to connect to the chain; a failure there is an outage too.
    ``registry``: the enrolment topic's view (None: no supersession check, e.g. in unit tests of one run)."""

    def __init__(
        self,
        serde: Serde,
        receipts_topic: str,
        deadletter_topic: str,
        registrar: Callable[[], TermsRegistrar],
        limits: Limits,
        registry: View | None = None,
        batch: int = 50,
        wall_clock: Callable[[], int] = lambda: int(time.time() * 1000),
    ):
        self.serde, self.limits, self.registry, self.batch = serde, limits, registry, batch
        self.receipts_topic, self.deadletter_topic = receipts_topic, deadletter_topic
        self._connect = registrar
        self._registrar: TermsRegistrar | None = None
        self.wall_clock = wall_clock

    # -- records --------------------------------------------------------------------------------------------
    def _version(self, value: bytes | None, topic: str | None) -> TermsVersion:
        _, event = self.serde.decode(value, topic)
        if "record_json" not in event:
            raise DecodeError(f"not a FlexEnrolment record (fields {sorted(event)})")
        try:
            record = record_from_event(dict(event))
        except (EnrolmentError, TypeError, KeyError, ValueError) as exc:
            raise TermsError(str(exc)) from exc
        errors = check_enrolment(record, self.limits)
        updated = event.get("updated_at")
        if isinstance(updated, int) and updated > self.wall_clock() + self.limits.max_future_ms:
            raise TermsError(f"{record.prosumer_id}: updated_at {updated} is ahead of the wall clock")
        if errors:
            raise InvalidRecord("FlexEnrolment", errors)
        return version_from_event(event)

    def on_record(self, record: Record, state: KeyValueState) -> list[Emit]:
        version = self._version(record.value, record.topic)
        assert version.updated_at is not None  # version_from_event always sets it
        PendingQueue(state).put(version.prosumer_id, PendingEnrolment.of(record, version.updated_at))
        return []

    # -- ticks ----------------------------------------------------------------------------------------------
    def on_tick(self, now_ms: int, partition: int, state: KeyValueState) -> list[Emit]:
        queue = PendingQueue(state)
        batch = queue.head(self.batch)
        if not batch:
            return []
        wanted = [(self._version(p.value, p.topic), p) for pid, p in batch if not self._superseded(pid, p)]
        out: list[Emit] = []
        if wanted:
            outcome = self._register([v for v, _ in wanted])
            by_id = {v.prosumer_id: p for v, p in wanted}
            for v, reason in outcome.refused:
                out.append(self._refused(by_id[v.prosumer_id], reason))
            for r in outcome.receipts:
                body = self.serde.encode("TermsReceipt", r, self.receipts_topic)
                out.append(Emit(self.receipts_topic, r["prosumer_id"].encode(), body))
        queue.pop(len(batch))
        return out

    def _superseded(self, prosumer_id: str, pending: PendingEnrolment) -> bool:
        """True if the registry view holds a newer enrolment of this prosumer (by ``updated_at``)."""
        if self.registry is None:
            return False
        latest = self.registry.get(prosumer_id.encode())
        if latest is None or latest == pending.value:
            return False
        try:
            _, event = self.serde.decode(latest)
            return int(event["updated_at"]) > pending.updated_at
        except (DecodeError, KeyError, TypeError, ValueError):
            return False  # a broken record in the view supersedes nothing

    def _register(self, wanted: list[TermsVersion]) -> Any:
        try:
            if self._registrar is None:
                self._registrar = self._connect()
            return self._registrar.register_all(wanted)
        except TermsRejected as exc:
            raise TransientError(f"ContractTermsRegistry refuses this key: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - node unreachable, timeout, reorg: retried with backoff
            raise TransientError(
                f"registering {len(wanted)} contract terms: {type(exc).__name__}: {exc}"
            ) from exc

    def _refused(self, p: PendingEnrolment, reason: str) -> Emit:
        letter = dead_letter(
            p.topic,
            p.partition,
            p.offset,
            p.key or None,
            p.value,
            f"stage:{STAGE}",
            reason,
            "ContractRefused",
        )
        return Emit(
            self.deadletter_topic,
            p.topic.encode(),
            self.serde.encode("DeadLetter", letter, self.deadletter_topic),
        )
