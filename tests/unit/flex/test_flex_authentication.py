"""DSO requests are signed: unsigned, unknown-DSO and badly signed requests are rejected and dispatch nothing."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account
from eth_utils import keccak

from edream.serde import Serde
from streams.flex.desk import FlexDesk
from streams.flex.dso_view import DsoView
from streams.flex.dsos import Dso, DsoRegistry, DsoRegistryError, dso_from_record, load_dso_file
from streams.flex.requests import FlexRequest, RequestSlot
from streams.flex.signing import request_signer, sign_request
from tools.sim.flex_scenario import (
    SIM_DSO_ID,
    SLOT_MS,
    T0,
    dso_view,
    flat_outlook,
    portfolio,
    reduce_request,
    sim_dso,
    sim_dsos,
)

NOW = T0 - 3_600_000
MALLORY_KEY = "0x" + keccak(text="mallory").hex()


def desk() -> FlexDesk:
    return FlexDesk(portfolio(10), flat_outlook, dsos=sim_dsos())


def unsigned(**change) -> FlexRequest:
    return dataclasses.replace(reduce_request(kw=6.0, n_slots=2), signature=None, **change)


def refused(d: FlexDesk, req: FlexRequest) -> dict:
    """Submit ``req``: exactly one Rejection, and the desk kept nothing and dispatches nothing afterwards."""
    [out] = d.submit(req, NOW)
    assert out.schema == "Rejection", out.record
    assert d.requests == {} and d.offers == {} and d.orders == {}
    during = d.on_timer(T0 + 60_000)  # inside the requested slots: no order, so no set-point
    assert [o for o in during if o.schema == "DeviceCommand"] == []
    return out.record


def test_a_signed_request_of_a_registered_dso_is_offered():
    d = desk()
    req = reduce_request(kw=6.0, n_slots=2)
    assert request_signer(req) == sim_dso().eth_address
    [offer] = d.submit(req, NOW)
    assert offer.schema == "FlexOffer" and offer.record["status"] == "FULL"


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (unsigned(dso_id="dso-mallory"), "UNSIGNED_REQUEST"),
        (unsigned(), "UNSIGNED_REQUEST"),  # even a registered DSO's id without a signature
        (
            sign_request(unsigned(dso_id="dso-mallory"), MALLORY_KEY),
            "UNKNOWN_DSO",
        ),  # self-signed, not registered
        (sign_request(unsigned(), MALLORY_KEY), "BAD_SIGNATURE"),  # claims dso-1, signed by another key
        (dataclasses.replace(reduce_request(), signature="0x1234"), "BAD_SIGNATURE"),  # malformed
        (dataclasses.replace(reduce_request(), signature="0x" + "ab" * 65), "BAD_SIGNATURE"),
    ],
    ids=[
        "mallory-unsigned",
        "dso-1-unsigned",
        "mallory-self-signed",
        "forged-dso-1",
        "short-sig",
        "junk-sig",
    ],
)
def test_unauthenticated_requests_are_rejected_and_dispatch_nothing(req, code):
    rec = refused(desk(), req)
    assert rec["code"] == code and rec["subject_kind"] == "FlexRequest" and rec["reason"]
    assert rec["subject_id"] == req.request_id and rec["party_id"] == req.dso_id


@pytest.mark.parametrize(
    "change",
    [
        {"slots": (RequestSlot(T0, 6.000001), RequestSlot(T0 + SLOT_MS, 6.0))},
        {"reward_micro_per_kwh": 9_000_000},
        {"area_id": "terni-2"},
        {"deadline": T0 - 1},
        {"request_id": "req-other"},
    ],
)
def test_any_change_after_signing_breaks_the_signature(change):
    tampered = dataclasses.replace(reduce_request(kw=6.0, n_slots=2), **change)
    assert refused(desk(), tampered)["code"] == "BAD_SIGNATURE"


def test_a_revoked_dso_is_unknown_and_an_older_record_cannot_reactivate_it():
    d = desk()
    d.dsos.upsert(sim_dso().model_copy(update={"active": False, "updated_at": 10}))
    assert not d.dsos.upsert(sim_dso())  # updated_at 0 < 10: ignored
    assert refused(d, reduce_request())["code"] == "UNKNOWN_DSO"


def test_the_signature_survives_the_avro_round_trip():
    serde = Serde()
    req = reduce_request(kw=6.3, n_slots=3)
    name, rec = serde.decode(serde.encode("FlexRequest", req.to_avro(), "flex.requests.v1"))
    back = FlexRequest.from_avro(rec)
    assert name == "FlexRequest" and back == req and request_signer(back) == sim_dso().eth_address


def test_an_unsigned_record_of_the_previous_contract_decodes_with_signature_none():
    rec = reduce_request().to_avro()
    del rec["signature"]
    assert FlexRequest.from_avro(rec).signature is None


def test_the_stage_view_registers_dsos_follows_revocation_and_ignores_a_malformed_record():
    serde = Serde()
    view = dso_view(serde)
    dsos = DsoView(view, serde)
    assert dsos.refresh().active(SIM_DSO_ID) == sim_dso()
    bad = sim_dso().to_avro() | {"dso_id": "dso-x", "eth_address": "0x12"}
    view.put(b"dso-x", serde.encode("FlexDso", bad))  # logged and ignored: dso-x stays unknown
    assert dsos.refresh().active("dso-x") is None and dsos.refresh().active(SIM_DSO_ID) == sim_dso()
    revoked = sim_dso().model_copy(update={"active": False, "updated_at": 10})
    view.put(SIM_DSO_ID.encode(), serde.encode("FlexDso", revoked.to_avro()))
    assert dsos.refresh().active(SIM_DSO_ID) is None
    view.put(SIM_DSO_ID.encode(), serde.encode("FlexDso", sim_dso().to_avro()))  # older: cannot re-activate
    assert dsos.refresh().active(SIM_DSO_ID) is None


def test_dso_record_round_trip():
    d = Dso(dso_id="dso-n", eth_address=Account.from_key(MALLORY_KEY).address.lower(), updated_at=5)
    assert d.eth_address == Account.from_key(MALLORY_KEY).address  # stored EIP-55 checksummed
    assert dso_from_record(d.to_avro()) == d
    assert DsoRegistry([d]).active("dso-n") == d


GOOD = Account.from_key(MALLORY_KEY).address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"dsos:\n  - {{dso_id: a, eth_address: '{GOOD}'}}\n  - {{dso_id: b, eth_address: '0x12'}}\n",
            "dsos[1] 'b': field 'eth_address': not an Ethereum address",
        ),
        (
            f"dsos:\n  - {{dso_id: a, eth_address: '{GOOD}', colour: red}}\n",
            "dsos[0] 'a': field 'colour': Extra inputs are not permitted",
        ),
        (f"dsos:\n  - {{eth_address: '{GOOD}'}}\n", "dsos[0] '?': field 'dso_id': Field required"),
        (
            f"dsos:\n  - {{dso_id: a, eth_address: '{GOOD}'}}\n  - {{dso_id: a, eth_address: '{GOOD}'}}\n",
            "dsos[1] 'a': field 'dso_id': duplicate of dsos[0]",
        ),
        ("dsos: {a: 1}\n", "top level must be a mapping with a 'dsos' list"),
        ("dsos: []\nextra: 1\n", "unknown top-level key(s) ['extra']"),
        ("dsos: [\n", "not valid YAML"),
    ],
)
def test_registry_file_errors_name_file_entry_and_field(tmp_path, text, message):
    path = tmp_path / "dsos.yaml"
    path.write_text(text)
    with pytest.raises(DsoRegistryError) as err:
        load_dso_file(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_registry_file_loads_with_the_given_version(tmp_path):
    path = tmp_path / "dsos.yaml"
    path.write_text(f"dsos:\n  - dso_id: dso-n\n    eth_address: '{GOOD.lower()}'\n    name: North\n")
    [d] = load_dso_file(path, updated_at=42)
    assert (d.dso_id, d.eth_address, d.name, d.active, d.updated_at) == ("dso-n", GOOD, "North", True, 42)
