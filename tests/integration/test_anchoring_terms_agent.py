"""The terms stage on the one runtime, registering DR contract terms on a real anvil node from the real broker:
once per version, nothing new on re-delivery or on a restart with a fresh group and the state dir deleted
(superseded enrolments of the not yet compacted log are never registered), amendments as version 2,
`edream verify terms`, and registration after a chain outage (the stage shows RETRYING meanwhile)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner
from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from edream.embedded.process import free_port
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from edream.topology import Topology, load_topology
from streams.agents.terms import stage
from streams.anchoring import cli
from streams.anchoring.keys import ANVIL_DEV_ACCOUNT_0_KEY, load_account
from streams.anchoring.terms import contract_key
from streams.anchoring.terms_chain import TermsRegistryClient
from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, enrolment_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}  # not compacted: superseded records stay


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("anvil-terms")
    with EmbeddedAnvil(data_dir, block_time_s=1, persist=False) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        account = load_account(embedded_chain=True, env={})
        yield node, w3, account, ensure_deployed(w3, account, data_dir)["ContractTermsRegistry"]


def prosumer(agg: str, pid: str, multiplier: float = 1.0) -> ProsumerRecord:
    terms = ContractTerms(aggregator_id=agg, multiplier=multiplier, valid_from=T0, valid_until=T0 + 10**10)
    return ProsumerRecord(pid, "area-1", terms, (CurtailableLoad("hp", 2.0),))


def send(bootstrap: str, topic: str, events: list[dict], raw: list[bytes] = ()) -> None:
    producer, serde = Producer({"bootstrap.servers": bootstrap}), Serde()
    for ev in events:
        producer.produce(
            topic, key=ev["prosumer_id"].encode(), value=serde.encode("FlexEnrolment", ev, topic)
        )
    for blob in raw:
        producer.produce(topic, key=b"garbage", value=blob)
    producer.flush(10)


def topics(renamed_topology, bootstrap: str) -> tuple[dict[str, str], Topology]:
    """A renamed topology and its terms topics, created on the broker: (canonical -> renamed name, topology)."""
    path, rename = renamed_topology()
    names = {
        c: rename[c] for c in ("flex.enrolments.v1", "chain.terms.receipts.v1", "platform.deadletter.v1")
    }
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, 4, 1, config=CONFIG) for n in names.values()]).values():
        fut.result(15)
    return names, load_topology(path)


def start(settings, names, topology) -> tuple[StageSupervisor, threading.Thread]:
    spec = stage(settings, topology)
    sup = StageSupervisor(spec, settings, names["platform.deadletter.v1"], None, 4, handle_signals=False)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(60)
    assert not t.is_alive()


def run_settings(test_settings, rpc_url: str, data_dir):
    return test_settings.model_copy(
        update={
            "eth_rpc_url": rpc_url,
            "edream_app_id": f"terms-{uuid.uuid4().hex[:6]}",
            "edream_data_dir": data_dir,
        }
    )


def receipts_of(read_topic, topic: str, n: int, timeout: float = 90) -> list[dict]:
    return [Serde().decode(m.value())[1] for m in read_topic(topic, n, timeout=timeout)]


def test_terms_registered_once_amended_verified(
    chain, test_settings, kafka_bootstrap, read_topic, tmp_path, monkeypatch, renamed_topology
):
    node, w3, account, address = chain
    monkeypatch.setenv("ETH_PRIVATE_KEY", ANVIL_DEV_ACCOUNT_0_KEY)
    monkeypatch.setenv("TERMS_REGISTRY_ADDRESS", address)
    names, topology = topics(renamed_topology, kafka_bootstrap)
    enrol, receipts_t, dlq = (
        names["flex.enrolments.v1"],
        names["chain.terms.receipts.v1"],
        names["platform.deadletter.v1"],
    )
    agg = f"agg-{uuid.uuid4().hex[:8]}"  # unique contract ids on the module's chain
    client = TermsRegistryClient(w3, address)

    def versions(pid: str) -> int:
        return client.latest_version(contract_key(agg, pid))

    def registrations() -> int:
        return len(client.contract.events.TermsRegistered().get_logs(from_block=0)) - before

    before = len(client.contract.events.TermsRegistered().get_logs(from_block=0))
    pids = ["p1", "p2", "p3"]
    original = [enrolment_event(prosumer(agg, p), T0) for p in pids]
    send(kafka_bootstrap, enrol, original, raw=[b"\x00not avro"])
    settings = run_settings(test_settings, node.rpc_url, tmp_path / "a")
    sup, t = start(settings, names, topology)
    first = receipts_of(read_topic, receipts_t, 3)
    assert sorted((r["prosumer_id"], r["version"]) for r in first) == [(p, 1) for p in pids]
    assert registrations() == 3 and [versions(p) for p in pids] == [1, 1, 1]
    for r in first:
        logs = client.contract.events.TermsRegistered().get_logs(
            from_block=0, argument_filters={"contractId": bytes.fromhex(r["contract_id"][2:])}
        )
        assert (
            len(logs) == 1
            and r["confirmations"] >= 2
            and r["terms_hash"][2:] in {e["terms_hash_keccak"] for e in original}
        )
    (dead,) = [Serde().decode(m.value())[1] for m in read_topic(dlq, 1)]
    assert (dead["source_topic"], dead["stage"], dead["original"]) == (enrol, "stage:terms", b"\x00not avro")

    # re-delivery (the demo re-publishes its registry on every start, with a new updated_at): nothing new
    send(kafka_bootstrap, enrol, [enrolment_event(prosumer(agg, p), T0 + 60_000) for p in pids])
    again = receipts_of(read_topic, receipts_t, 6)
    assert {r["event_id"] for r in again} == {r["event_id"] for r in first}
    assert registrations() == 3 and [versions(p) for p in pids] == [1, 1, 1]

    # an amendment becomes version 2
    amended = enrolment_event(prosumer(agg, "p1", multiplier=1.5), T0 + 120_000)
    send(kafka_bootstrap, enrol, [amended])
    latest = receipts_of(read_topic, receipts_t, 7)
    (v2,) = [r for r in latest if r["version"] == 2]
    assert v2["terms_hash"][2:] == amended["terms_hash_keccak"]
    assert registrations() == 4 and [versions(p) for p in pids] == [2, 1, 1]
    stop(sup, t)

    # a fresh group with the local state deleted re-reads the whole (not compacted) history, superseded terms of
    # p1 included: none is registered again, and the receipts name the current versions
    shutil.rmtree(sup.state_dir)
    sup, t = start(run_settings(test_settings, node.rpc_url, tmp_path / "a"), names, topology)
    deadline = time.monotonic() + 90
    while sup.health.events_in < 8 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(6)  # ticks after the history was read
    stop(sup, t)
    published = receipts_of(read_topic, receipts_t, 30, timeout=10)
    assert registrations() == 4 and [versions(p) for p in pids] == [2, 1, 1]
    # one more receipt per prosumer, each for its current version (p1 v1 is not among them)
    assert Counter((r["prosumer_id"], r["version"]) for r in published) == {
        ("p1", 1): 2,
        ("p2", 1): 3,
        ("p3", 1): 3,
        ("p1", 2): 2,
    }
    assert len({r["event_id"] for r in published}) == 4

    # outsider verification
    env = {
        "ETH_RPC_URL": node.rpc_url,
        "TERMS_REGISTRY_ADDRESS": address,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EDREAM_DATA_DIR": str(test_settings.edream_data_dir),
    }
    runner = CliRunner()

    def verify(*args: str):
        res = runner.invoke(cli.app, ["terms", *args], env=env)
        return res.exit_code, res.output, json.loads(res.output.strip().splitlines()[-1])

    code, out, rep = verify("p1", "--topic", enrol)  # current record read from the topic
    assert (code, rep["status"], rep["version"]) == (0, "VALID", 2) and out.startswith("VALID")
    assert rep["block_number"] == v2["block_number"]  # the block of the amendment
    tmp = test_settings.edream_data_dir / f"terms-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    tampered_doc = json.loads(amended["record_json"])
    tampered_doc["terms"]["penalty_micro_per_kwh"] = 1  # the prosumer's file claims a lower penalty
    (tmp / "tampered.json").write_text(json.dumps({**amended, "record_json": json.dumps(tampered_doc)}))
    code, out, rep = verify("p1", "--file", str(tmp / "tampered.json"))
    assert (code, rep["status"]) == (1, "MISMATCH") and "MISMATCH" in out
    (tmp / "old.json").write_text(json.dumps(original[0]))
    code, _, rep = verify("p1", "--file", str(tmp / "old.json"))
    assert (code, rep["status"]) == (1, "MISMATCH") and "superseded version 1" in rep["problems"][0]
    (tmp / "bare.json").write_text(original[1]["record_json"])
    code, _, rep = verify("p2", "--file", str(tmp / "bare.json"))  # a bare registry record works too
    assert (code, rep["status"], rep["version"]) == (0, "VALID", 1)
    (tmp / "new.json").write_text(json.dumps(enrolment_event(prosumer(agg, "p9"), T0)))
    code, _, rep = verify("p9", "--file", str(tmp / "new.json"))
    assert (code, rep["status"]) == (1, "NOT_REGISTERED")
    code, _, _ = verify("p9", "--topic", enrol)  # no enrolment of p9 on the topic: cannot verify
    assert code == 2


def test_registered_after_chain_outage(
    tmp_path, test_settings, kafka_bootstrap, read_topic, monkeypatch, renamed_topology
):
    port = free_port()
    account = load_account(embedded_chain=True, env={})
    with EmbeddedAnvil(tmp_path, port=port, block_time_s=1) as node:  # deploy, then the node goes down
        address = ensure_deployed(Web3(Web3.HTTPProvider(node.rpc_url)), account, tmp_path)[
            "ContractTermsRegistry"
        ]
    monkeypatch.setenv("ETH_PRIVATE_KEY", ANVIL_DEV_ACCOUNT_0_KEY)
    monkeypatch.setenv("TERMS_REGISTRY_ADDRESS", address)
    names, topology = topics(renamed_topology, kafka_bootstrap)
    agg = f"agg-{uuid.uuid4().hex[:8]}"
    send(kafka_bootstrap, names["flex.enrolments.v1"], [enrolment_event(prosumer(agg, "p1"), T0)])
    sup, t = start(
        run_settings(test_settings, f"http://127.0.0.1:{port}", tmp_path / "stage"), names, topology
    )
    try:
        deadline = time.monotonic() + 60
        while (
            "registering 1 contract terms" not in (sup.health.last_error or "")
            and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        assert sup.health.last_error and "registering 1 contract terms" in sup.health.last_error
        time.sleep(10)  # more attempts with backoff while the chain is down
        assert read_topic(names["chain.terms.receipts.v1"], 1, timeout=2) == []  # nothing while down
        with EmbeddedAnvil(tmp_path, port=port, block_time_s=1):  # back with its state: the contract is there
            (receipt,) = receipts_of(read_topic, names["chain.terms.receipts.v1"], 1, timeout=120)
            client = TermsRegistryClient(Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}")), address)
            assert receipt["version"] == 1 and client.latest_version(contract_key(agg, "p1")) == 1
            assert len(client.contract.events.TermsRegistered().get_logs(from_block=0)) == 1
            assert sup.health.status == "UP"
    finally:
        stop(sup, t)
