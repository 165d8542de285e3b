"""DR contract terms on-chain: what a prosumer enrolment registers in ``ContractTermsRegistry`` (pure logic).

An enrolment (``flex.enrolments.v1``, :func:`streams.flex.enrolment.enrolment_event`) carries the prosumer's
contract document; its canonical bytes (:meth:`ProsumerRecord.contract_document`) are what is proven on-chain.
This module derives the arguments of ``ContractTermsRegistry.register(contractId, prosumerId, termsHash,
registrationHash, validFrom, validTo)`` from an enrolment, decides whether the chain still needs them, and
checks an enrolment against the registered versions (outsider verification).

* **Ids (pseudonymous).** ``contractId = keccak256("<aggregator_id>/<prosumer_id>")`` (the off-chain contract
  reference, UTF-8), ``prosumerId = keccak256("<prosumer_id>")``. No personal data goes on-chain; anyone who
  knows the off-chain ids can recompute them.
* **termsHash** = keccak256 of the canonical contract-document bytes, recomputed from ``record_json`` and
  required to equal the event's ``terms_hash`` (SHA-256) and ``terms_hash_keccak`` fields.
* **registrationHash** = 32 zero bytes: an enrolment binds no market registration (the P2P participant registry
  is a different topic); the field is reserved for it.
* **Validity** (UTC epoch ms, ``uint64`` on-chain, ``validTo > validFrom`` required): ``valid_from`` and
  ``valid_until`` of the terms. An open-ended ``valid_until`` (missing/None, or beyond the sentinel) maps to
  :data:`OPEN_ENDED_MS` = 2^63 - 1, which fits the contract's ``uint64``, Avro ``long`` and ClickHouse ``Int64``.
* **De-enrolment** (``active = false``): the same terms are registered once more with ``validTo`` = the
  de-enrolment time (the event's ``updated_at``, not later than ``valid_until``), so the chain shows when the
  contract ended. A contract withdrawn at or before its ``valid_from`` gets ``validTo = validFrom + 1`` (the
  shortest validity the contract accepts).
* **When to register.** The wanted version is a pure function of the enrolment. Registration is needed iff the
  chain's latest version for ``contractId`` does not already carry it: a different termsHash (new terms or an
  amendment -> version n+1) or validity (re-enrolment after a de-enrolment). A de-enrolment whose terms are
  already closed at or before its time is not registered again, so re-published de-enrolments (a later
  ``updated_at``) add nothing. Replays and restarts never register twice, *provided superseded enrolments of the
  same prosumer are not acted on* (the agent collapses the compacted topic to its last record per prosumer).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_utils import keccak

from streams.flex.enrolment import EnrolmentError, ProsumerRecord, from_dict, record_from_event

#: validTo of an open-ended contract, UTC epoch ms (int64 max: representable in uint64, Avro long and Int64).
OPEN_ENDED_MS = 2**63 - 1
#: registrationHash of an enrolment: no market registration is bound by it.
NO_REGISTRATION = b"\x00" * 32


class TermsError(ValueError):
    """An enrolment that cannot be registered (bad record, hash mismatch, impossible validity)."""


def contract_ref(aggregator_id: str, prosumer_id: str) -> str:
    """The stable off-chain contract id ``<aggregator_id>/<prosumer_id>``."""
    return f"{aggregator_id}/{prosumer_id}"


def contract_key(aggregator_id: str, prosumer_id: str) -> bytes:
    """On-chain ``contractId``: keccak256 of :func:`contract_ref` (UTF-8)."""
    return keccak(contract_ref(aggregator_id, prosumer_id).encode("utf-8"))


def prosumer_key(prosumer_id: str) -> bytes:
    """On-chain ``prosumerId``: keccak256 of the prosumer id (UTF-8)."""
    return keccak(prosumer_id.encode("utf-8"))


def hex32(b: bytes) -> str:
    """0x-hex of a 32-byte value."""
    return "0x" + b.hex()


@dataclass(frozen=True)
class TermsVersion:
    """One wanted (or registered) version of a contract's terms; validity in UTC epoch ms."""

    prosumer_id: str
    contract_ref: str
    contract_id: bytes
    prosumer_key: bytes
    terms_hash: bytes
    terms_hash_sha256: str
    registration_hash: bytes
    valid_from: int
    valid_to: int
    active: bool
    updated_at: int | None = None

    def register_args(self) -> tuple[bytes, bytes, bytes, bytes, int, int]:
        """Positional arguments of ``ContractTermsRegistry.register``."""
        return (
            self.contract_id,
            self.prosumer_key,
            self.terms_hash,
            self.registration_hash,
            self.valid_from,
            self.valid_to,
        )


@dataclass(frozen=True)
class OnChainTerms:
    """What ``ContractTermsRegistry.getTerms(contractId, version)`` returns, plus the version number."""

    version: int
    prosumer_key: bytes
    terms_hash: bytes
    registration_hash: bytes
    valid_from: int
    valid_to: int
    block_number: int

    @classmethod
    def from_call(cls, version: int, result: Sequence[Any]) -> OnChainTerms:
        """From the ``Terms`` struct tuple (prosumerId, termsHash, registrationHash, validFrom, validTo, block)."""
        pid, th, rh, vf, vt, block = result
        return cls(version, bytes(pid), bytes(th), bytes(rh), int(vf), int(vt), int(block))


def validity(record: ProsumerRecord, ended_at: int | None = None) -> tuple[int, int]:
    """(validFrom, validTo), UTC epoch ms, for the contract of ``record``.

    ``ended_at`` (de-enrolment time) caps validTo; open-ended terms get :data:`OPEN_ENDED_MS`. Raises
    :class:`TermsError` if the terms themselves are impossible (negative start, end not after start)."""
    t = record.terms
    start = t.valid_from
    end = t.valid_until
    if not isinstance(start, int) or start < 0 or start >= OPEN_ENDED_MS:
        raise TermsError(f"{record.prosumer_id}: valid_from {start!r} is not a UTC epoch ms in uint64")
    if end is None or end >= OPEN_ENDED_MS:
        end = OPEN_ENDED_MS
    if not isinstance(end, int) or end <= start:
        raise TermsError(f"{record.prosumer_id}: valid_until {end!r} must be after valid_from {start}")
    if ended_at is not None:
        end = max(start + 1, min(end, ended_at))
    return start, end


def wanted_version(
    record: ProsumerRecord, updated_at: int | None = None, sha256: str | None = None
) -> TermsVersion:
    """The version the chain should hold for ``record`` (see module docstring). ``updated_at`` (UTC epoch ms)
    is the de-enrolment time of an inactive record; without it an inactive record is not registrable."""
    if not record.active and updated_at is None:
        raise TermsError(f"{record.prosumer_id}: inactive enrolment without updated_at (de-enrolment time)")
    vf, vt = validity(record, None if record.active else updated_at)
    try:
        th = bytes.fromhex(record.terms_hash("keccak256"))
    except (TypeError, ValueError) as exc:  # NotCanonical is a TypeError
        raise TermsError(f"{record.prosumer_id}: contract document has no canonical bytes: {exc}") from exc
    agg = record.terms.aggregator_id
    return TermsVersion(
        prosumer_id=record.prosumer_id,
        contract_ref=contract_ref(agg, record.prosumer_id),
        contract_id=contract_key(agg, record.prosumer_id),
        prosumer_key=prosumer_key(record.prosumer_id),
        terms_hash=th,
        terms_hash_sha256=sha256 or record.terms_hash(),
        registration_hash=NO_REGISTRATION,
        valid_from=vf,
        valid_to=vt,
        active=record.active,
        updated_at=updated_at,
    )


def version_from_event(event: Mapping[str, Any]) -> TermsVersion:
    """Wanted version of a decoded ``FlexEnrolment`` event; re-verifies both stated hashes against
    ``record_json``. Raises :class:`TermsError` (the message names the problem)."""
    try:
        record = record_from_event(dict(event))  # checks terms_hash (SHA-256)
    except (EnrolmentError, TypeError, KeyError) as exc:
        raise TermsError(str(exc)) from exc
    keccak_hex = record.terms_hash("keccak256")
    stated = str(event.get("terms_hash_keccak", "")).lower().removeprefix("0x")
    if stated != keccak_hex:
        raise TermsError(f"{record.prosumer_id}: terms_hash_keccak does not match the record")
    if event.get("prosumer_id") != record.prosumer_id:
        raise TermsError(f"event prosumer_id {event.get('prosumer_id')!r} != record {record.prosumer_id!r}")
    if bool(event.get("active", True)) != record.active:
        raise TermsError(f"{record.prosumer_id}: event active flag disagrees with the record")
    return wanted_version(record, int(event["updated_at"]), event["terms_hash"])


def needs_registration(wanted: TermsVersion, latest: OnChainTerms | None) -> bool:
    """True iff ``register(wanted)`` must be sent given the contract's latest on-chain version (None: none).

    Active terms: needed unless the latest version carries the same termsHash and validity. De-enrolment:
    needed unless the latest version carries the same termsHash and already ends at or before ``valid_to``."""
    if latest is None or latest.terms_hash != wanted.terms_hash or latest.valid_from != wanted.valid_from:
        return True
    if wanted.active:
        return latest.valid_to != wanted.valid_to
    return latest.valid_to > wanted.valid_to


def receipt_event_id(chain_id: int, contract_address: str, contract_id: bytes, version: int) -> str:
    """Deterministic TermsReceipt id: replays of the same registration give the same id."""
    return hex32(
        keccak(f"terms|{chain_id}|{contract_address.lower()}|{hex32(contract_id)}|{version}".encode())
    )


def terms_receipt(
    wanted: TermsVersion,
    on_chain: OnChainTerms,
    *,
    chain_id: int,
    contract_address: str,
    tx_hash: str,
    confirmations: int,
    registered_at: int,
) -> dict[str, Any]:
    """TermsReceipt.avsc record for ``wanted`` registered as ``on_chain`` (times UTC epoch ms)."""
    return {
        "event_id": receipt_event_id(chain_id, contract_address, wanted.contract_id, on_chain.version),
        "prosumer_id": wanted.prosumer_id,
        "contract_ref": wanted.contract_ref,
        "contract_id": hex32(wanted.contract_id),
        "prosumer_key": hex32(wanted.prosumer_key),
        "version": on_chain.version,
        "terms_hash": hex32(on_chain.terms_hash),
        "terms_hash_sha256": wanted.terms_hash_sha256,
        "registration_hash": hex32(on_chain.registration_hash),
        "valid_from": on_chain.valid_from,
        "valid_to": on_chain.valid_to,
        "active": wanted.active,
        "chain_id": chain_id,
        "contract_address": contract_address,
        "tx_hash": tx_hash,
        "block_number": on_chain.block_number,
        "confirmations": confirmations,
        "registered_at": registered_at,
    }


# -- outsider verification --------------------------------------------------------------------------------
@dataclass
class TermsReport:
    """Outcome of :func:`verify_terms`: VALID, MISMATCH or NOT_REGISTERED, with the versions seen."""

    prosumer_id: str
    contract_ref: str
    contract_id: str
    status: str
    terms_hash: str
    version: int | None = None
    block_number: int | None = None
    on_chain_terms_hash: str | None = None
    valid_from: int | None = None
    valid_to: int | None = None
    versions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.status == "VALID"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_from_document(doc: Mapping[str, Any]) -> tuple[ProsumerRecord, list[str], int | None]:
    """A ``FlexEnrolment`` event (with ``record_json``) or a bare registry record (``to_dict``) -> the record,
    problems with the hashes it states (they are recomputed, never trusted), and its ``updated_at``."""
    problems: list[str] = []
    if "record_json" in doc:
        try:
            record = from_dict(json.loads(doc["record_json"]))
        except (EnrolmentError, ValueError, TypeError) as exc:
            raise TermsError(f"bad enrolment record_json: {exc}") from exc
        if doc.get("terms_hash") not in (None, record.terms_hash()):
            problems.append("the event's terms_hash (SHA-256) does not match its record_json")
        stated = doc.get("terms_hash_keccak")
        if stated is not None and str(stated).lower().removeprefix("0x") != record.terms_hash("keccak256"):
            problems.append("the event's terms_hash_keccak does not match its record_json")
        updated = doc.get("updated_at")
        return record, problems, None if updated is None else int(updated)
    try:
        return from_dict(dict(doc)), problems, None
    except EnrolmentError as exc:
        raise TermsError(str(exc)) from exc


def verify_terms(
    record: ProsumerRecord, versions: Sequence[OnChainTerms], problems: Sequence[str] = ()
) -> TermsReport:
    """Check ``record``'s terms (hash recomputed from the document) against a contract's on-chain versions
    (ascending). VALID iff the latest version carries this termsHash and prosumerId, with validFrom equal and
    validTo not beyond the document's (a de-enrolment may close it earlier: reported as a note). An older
    matching version only (superseded terms) is a MISMATCH naming it; no version at all is NOT_REGISTERED.
    ``problems`` (e.g. stated hashes that do not match the document) make an otherwise VALID result a MISMATCH."""
    agg = record.terms.aggregator_id
    th = bytes.fromhex(record.terms_hash("keccak256"))
    rep = TermsReport(
        prosumer_id=record.prosumer_id,
        contract_ref=contract_ref(agg, record.prosumer_id),
        contract_id=hex32(contract_key(agg, record.prosumer_id)),
        status="NOT_REGISTERED",
        terms_hash=hex32(th),
        versions=[
            {
                "version": v.version,
                "terms_hash": hex32(v.terms_hash),
                "valid_from": v.valid_from,
                "valid_to": v.valid_to,
                "block_number": v.block_number,
            }
            for v in versions
        ],
        problems=list(problems),
    )
    if not versions:
        rep.problems.append(f"contract {rep.contract_ref} ({rep.contract_id}) has no registered terms")
        return rep
    latest = versions[-1]
    rep.version, rep.block_number = latest.version, latest.block_number
    rep.on_chain_terms_hash = hex32(latest.terms_hash)
    rep.valid_from, rep.valid_to = latest.valid_from, latest.valid_to
    rep.status = "MISMATCH"
    if latest.terms_hash != th:
        older = [v for v in versions[:-1] if v.terms_hash == th]
        if older:
            rep.problems.append(
                f"terms match superseded version {older[-1].version} (block {older[-1].block_number}); "
                f"current version {latest.version} registered {hex32(latest.terms_hash)}"
            )
        else:
            rep.problems.append(
                f"terms hash {hex32(th)} is in no registered version; current version {latest.version} "
                f"registered {hex32(latest.terms_hash)}"
            )
        return rep
    if latest.prosumer_key != prosumer_key(record.prosumer_id):
        rep.problems.append("on-chain prosumerId is not keccak256 of this prosumer id")
    doc_from, doc_to = validity(record)
    if latest.valid_from != doc_from:
        rep.problems.append(f"on-chain validFrom {latest.valid_from} != terms valid_from {doc_from}")
    if latest.valid_to > doc_to:
        rep.problems.append(f"on-chain validTo {latest.valid_to} is after terms valid_until {doc_to}")
    elif latest.valid_to < doc_to:
        rep.notes.append(f"contract closed on-chain at {latest.valid_to} (de-enrolment)")
    if not rep.problems:
        rep.status = "VALID"
    return rep
