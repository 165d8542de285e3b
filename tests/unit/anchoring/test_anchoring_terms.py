"""Pure logic of contract-terms registration (streams/anchoring/terms.py): ids, hashes, validity, the
registration decision and outsider verification."""

from __future__ import annotations

import dataclasses
import json

import pytest
from eth_utils import keccak

from streams.anchoring.terms import (
    NO_REGISTRATION,
    OPEN_ENDED_MS,
    OnChainTerms,
    TermsError,
    contract_key,
    needs_registration,
    prosumer_key,
    receipt_event_id,
    record_from_document,
    validity,
    verify_terms,
    version_from_event,
    wanted_version,
)
from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, enrolment_event

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, UTC epoch ms
DAY = 86_400_000


def record(pid: str = "p1", active: bool = True, **terms) -> ProsumerRecord:
    t = {"aggregator_id": "agg", "valid_from": T0, "valid_until": T0 + 365 * DAY, **terms}
    return ProsumerRecord(pid, "area", ContractTerms(**t), (CurtailableLoad("hp", 2.0),), active=active)


def on_chain(v, version: int = 1, **over) -> OnChainTerms:
    base = dict(
        version=version,
        prosumer_key=v.prosumer_key,
        terms_hash=v.terms_hash,
        registration_hash=v.registration_hash,
        valid_from=v.valid_from,
        valid_to=v.valid_to,
        block_number=10 + version,
    )
    base.update(over)
    return OnChainTerms(**base)


def test_ids_are_keccak_of_the_off_chain_ids():
    v = wanted_version(record())
    assert v.contract_ref == "agg/p1"
    assert v.contract_id == keccak(b"agg/p1") == contract_key("agg", "p1")
    assert v.prosumer_key == keccak(b"p1") == prosumer_key("p1")
    assert v.registration_hash == NO_REGISTRATION
    assert v.register_args() == (
        v.contract_id,
        v.prosumer_key,
        v.terms_hash,
        NO_REGISTRATION,
        T0,
        T0 + 365 * DAY,
    )


def test_terms_hash_is_keccak_of_the_canonical_document_and_changes_with_any_term():
    r = record()
    ev = enrolment_event(r, T0)
    v = version_from_event(ev)
    assert v.terms_hash.hex() == ev["terms_hash_keccak"] and v.terms_hash_sha256 == ev["terms_hash"]
    assert wanted_version(record(multiplier=1.5)).terms_hash != v.terms_hash
    assert wanted_version(record(pid="p2")).terms_hash != v.terms_hash


def test_event_whose_hashes_do_not_match_the_record_is_refused():
    ev = enrolment_event(record(), T0)
    tampered = json.loads(ev["record_json"])
    tampered["terms"]["multiplier"] = 3.0
    with pytest.raises(TermsError, match="terms_hash"):
        version_from_event({**ev, "record_json": json.dumps(tampered)})
    with pytest.raises(TermsError, match="terms_hash_keccak"):
        version_from_event({**ev, "terms_hash_keccak": "00" * 32})
    with pytest.raises(TermsError):
        version_from_event({**ev, "record_json": "{not json"})


def test_validity_open_ended_and_impossible_terms():
    assert validity(record()) == (T0, T0 + 365 * DAY)
    assert validity(record(valid_until=None)) == (T0, OPEN_ENDED_MS)
    assert validity(record(valid_until=2**64)) == (T0, OPEN_ENDED_MS)  # beyond uint64/int64: open-ended
    assert OPEN_ENDED_MS < 2**64 and OPEN_ENDED_MS == 2**63 - 1
    with pytest.raises(TermsError, match="valid_until"):
        validity(record(valid_until=T0))  # the contract requires validTo > validFrom
    with pytest.raises(TermsError, match="valid_from"):
        validity(record(valid_from=-1))


def test_de_enrolment_closes_validity_at_its_time():
    at = T0 + 10 * DAY
    v = version_from_event(enrolment_event(record(active=False), at))
    assert (v.valid_from, v.valid_to, v.active) == (T0, at, False)
    # de-enrolled after the terms had expired: not beyond valid_until
    assert validity(record(), ended_at=T0 + 999 * DAY) == (T0, T0 + 365 * DAY)
    # withdrawn before the contract took effect: the shortest validity the contract accepts
    assert validity(record(), ended_at=T0 - DAY) == (T0, T0 + 1)
    with pytest.raises(TermsError, match="updated_at"):
        wanted_version(record(active=False))


def test_needs_registration_first_time_and_not_again():
    v = wanted_version(record())
    assert needs_registration(v, None)
    assert not needs_registration(v, on_chain(v))


def test_amendment_needs_a_new_version():
    v1 = wanted_version(record())
    v2 = wanted_version(record(penalty_micro_per_kwh=400_000))
    assert v1.contract_id == v2.contract_id and v1.terms_hash != v2.terms_hash
    assert needs_registration(v2, on_chain(v1))
    # going back to earlier terms is a new version too (latest carries other terms)
    assert needs_registration(v1, on_chain(v2, version=2))


def test_de_enrolment_registered_once_and_re_enrolment_reopens():
    active = wanted_version(record())
    closed = wanted_version(record(active=False), updated_at=T0 + 5 * DAY)
    assert needs_registration(closed, on_chain(active))  # still open on-chain
    registered_closed = on_chain(closed, version=2)
    assert not needs_registration(closed, registered_closed)
    # the same de-enrolment re-published later does not extend or re-register
    later = wanted_version(record(active=False), updated_at=T0 + 9 * DAY)
    assert not needs_registration(later, registered_closed)
    # re-enrolling with the same terms opens the contract again: version 3
    assert needs_registration(active, registered_closed)


def test_receipt_event_id_is_deterministic_per_version():
    cid = contract_key("agg", "p1")
    a = receipt_event_id(31337, "0xABC", cid, 1)
    assert a == receipt_event_id(31337, "0xabc", cid, 1) and a != receipt_event_id(31337, "0xabc", cid, 2)


# -- verification ---------------------------------------------------------------------------------------
def test_verify_valid_current_terms():
    r = record()
    v = wanted_version(r)
    rep = verify_terms(r, [on_chain(v)])
    assert rep.valid and rep.status == "VALID" and (rep.version, rep.block_number) == (1, 11)
    assert rep.terms_hash == "0x" + v.terms_hash.hex() and not rep.problems


def test_verify_not_registered_and_mismatch_for_tampered_terms():
    r = record()
    assert verify_terms(r, []).status == "NOT_REGISTERED"
    tampered = record(multiplier=2.0)
    rep = verify_terms(tampered, [on_chain(wanted_version(r))])
    assert rep.status == "MISMATCH" and "in no registered version" in rep.problems[0]


def test_verify_superseded_terms_name_the_old_version():
    old, new = record(), record(multiplier=1.3)
    versions = [on_chain(wanted_version(old)), on_chain(wanted_version(new), version=2)]
    assert verify_terms(new, versions).status == "VALID"
    rep = verify_terms(old, versions)
    assert rep.status == "MISMATCH" and "superseded version 1" in rep.problems[0]


def test_verify_closed_contract_is_valid_with_a_note_but_not_an_extended_one():
    r = record()
    v = wanted_version(r)
    closed = on_chain(v, valid_to=T0 + DAY)
    rep = verify_terms(dataclasses.replace(r, active=False), [closed])
    assert rep.valid and "de-enrolment" in rep.notes[0]
    extended = on_chain(v, valid_to=T0 + 999 * DAY)
    assert verify_terms(r, [extended]).status == "MISMATCH"
    assert verify_terms(r, [on_chain(v, prosumer_key=keccak(b"other"))]).status == "MISMATCH"


def test_record_from_document_recomputes_hashes():
    ev = enrolment_event(record(), T0)
    r, problems, updated = record_from_document(ev)
    assert r == record() and problems == [] and updated == T0
    r2, problems, _ = record_from_document({**ev, "terms_hash": "ab" * 32})
    assert r2 == record() and "terms_hash (SHA-256)" in problems[0]
    assert verify_terms(r2, [on_chain(wanted_version(r2))], problems).status == "MISMATCH"
    bare, problems, updated = record_from_document(json.loads(ev["record_json"]))
    assert bare == record() and problems == [] and updated is None
