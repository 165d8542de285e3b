"""Both framings round-trip every contract; garbage is a clear DecodeError, never a crash."""

from __future__ import annotations

import pytest

from edream.avro_samples import sample_value
from edream.avro_schemas import all_contracts, contract
from edream.serde import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, DecodeError, Serde

CONTRACTS = sorted(all_contracts())


@pytest.mark.parametrize("name", CONTRACTS)
def test_single_object_roundtrip(name):
    rec = sample_value(contract(name).raw)
    data = Serde().encode(name, rec)
    assert data[:2] == SINGLE_OBJECT_MAGIC and data[2:10] == contract(name).fingerprint
    assert Serde().decode(data) == (name, rec)


@pytest.mark.parametrize("name", CONTRACTS)
def test_confluent_roundtrip_with_mock_registry(name):
    serde = Serde(registry_url="mock://serde-test")
    rec = sample_value(contract(name).raw)
    data = serde.encode(name, rec, topic=f"topic.{name}")
    assert data[:1] == CONFLUENT_MAGIC
    assert serde.decode(data) == (name, rec)
    # a registry-configured consumer still reads registry-less producers
    assert serde.decode(Serde().encode(name, rec)) == (name, rec)


def test_fingerprints_are_unique_and_names_match_files():
    fps = [c.fingerprint for c in all_contracts().values()]
    assert len(set(fps)) == len(fps)
    for name, c in all_contracts().items():
        assert c.raw["name"] == name and c.raw.get("namespace", "").startswith("eu.edream.")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"\x7fhello", "unknown framing"),
        (SINGLE_OBJECT_MAGIC + b"\x01\x02", "truncated"),
        (SINGLE_OBJECT_MAGIC + b"\xff" * 8 + b"body", "fingerprint"),
        (b"\x00\x00\x00\x00\x09xx", "no SCHEMA_REGISTRY_URL"),
    ],
)
def test_garbage_is_a_decode_error(data, reason):
    with pytest.raises(DecodeError, match=reason):
        Serde().decode(data)


def test_corrupt_body_is_a_decode_error():
    data = Serde().encode("Measurement", sample_value(contract("Measurement").raw))
    with pytest.raises(DecodeError):
        Serde().decode(data[:12])


def test_encode_rejects_invalid_record():
    rec = sample_value(contract("Measurement").raw)
    rec["quantity"] = "NOT_A_QUANTITY"
    with pytest.raises(ValueError):
        Serde().encode("Measurement", rec)


@pytest.mark.parametrize("registry_url", [None, "mock://serde-many"])
def test_encode_many_gives_the_bytes_of_encode_per_record(registry_url):
    serde = Serde(registry_url=registry_url)
    base = sample_value(contract("Measurement").raw)
    recs = [
        base | {"seq": i, "value": None if i % 3 == 0 else i * 1.5, "event_id": "e" * i} for i in range(50)
    ]
    many = serde.encode_many("Measurement", recs, "topic.many")
    assert many == [serde.encode("Measurement", r, "topic.many") for r in recs]
    assert [serde.decode(b, "topic.many")[1] for b in many] == recs
    assert serde.encode_many("Measurement", [], "topic.many") == []
