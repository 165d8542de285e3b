"""DR contract terms registered on a real anvil node from the real broker: once per version, nothing new on
re-delivery or restart, amendments as version 2, `edream verify terms`, and registration after a chain outage."""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka import Producer, TopicPartition
from typer.testing import CliRunner
from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from edream.embedded.process import free_port
from edream.serde import Serde
from streams.anchoring import cli
from streams.anchoring.keys import load_account
from streams.anchoring.terms import contract_key
from streams.anchoring.terms_agent import TermsAgent, TermsConfig, TermsRegistrar
from streams.anchoring.terms_chain import TermsRegistryClient
from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, enrolment_event

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
MAX_STEPS = 120  # bound of every wait loop: the assertions below are on outcomes, never on elapsed time


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


def step_until(agent: TermsAgent, done, steps: int = MAX_STEPS, max_messages: int = 500) -> None:
    for _ in range(steps):
        if done():
            return
        agent.step(timeout_s=0.5, max_messages=max_messages)
    assert done(), "condition not reached within the step bound"


def test_terms_registered_once_amended_verified(
    chain, test_settings, kafka_bootstrap, unique_topic, read_topic
):
    node, w3, account, address = chain
    enrol, receipts_t, dlq = unique_topic("enrol", partitions=2), unique_topic("terms"), unique_topic("dlq")
    agg = f"agg-{uuid.uuid4().hex[:8]}"  # unique contract ids on the module's chain
    client = TermsRegistryClient(w3, address, account, poll_s=0.05)
    registrar = TermsRegistrar(client, TermsConfig(confirmations=2))

    def agent() -> TermsAgent:
        return TermsAgent(
            test_settings,
            registrar,
            topic=enrol,
            receipts_topic=receipts_t,
            deadletter_topic=dlq,
            group_id=f"terms-{uuid.uuid4().hex[:8]}",
        )

    def versions(pid: str) -> int:
        return client.latest_version(contract_key(agg, pid))

    pids = ["p1", "p2", "p3"]
    original = [enrolment_event(prosumer(agg, p), T0) for p in pids]
    send(kafka_bootstrap, enrol, original, raw=[b"\x00not avro"])

    a = agent()
    step_until(a, lambda: len(a.receipts) >= 3)
    assert sorted((r["prosumer_id"], r["version"]) for r in a.receipts) == [(p, 1) for p in pids]
    assert len(registrar.sent_txs) == 3 and [versions(p) for p in pids] == [1, 1, 1]
    for r in a.receipts:
        logs = client.contract.events.TermsRegistered().get_logs(
            from_block=0, argument_filters={"contractId": bytes.fromhex(r["contract_id"][2:])}
        )
        assert (
            len(logs) == 1
            and r["confirmations"] >= 2
            and r["terms_hash"][2:] in {e["terms_hash_keccak"] for e in original}
        )

    # re-delivery (the demo re-publishes its registry on every start, with a new updated_at): nothing new
    send(kafka_bootstrap, enrol, [enrolment_event(prosumer(agg, p), T0 + 60_000) for p in pids])
    step_until(a, lambda: len(a.receipts) >= 6)
    assert len(registrar.sent_txs) == 3 and [versions(p) for p in pids] == [1, 1, 1]
    assert {r["event_id"] for r in a.receipts[3:]} == {r["event_id"] for r in a.receipts[:3]}

    # an amendment becomes version 2
    amended = enrolment_event(prosumer(agg, "p1", multiplier=1.5), T0 + 120_000)
    send(kafka_bootstrap, enrol, [amended])
    step_until(a, lambda: len(a.receipts) >= 7)
    assert a.receipts[-1]["version"] == 2 and a.receipts[-1]["terms_hash"][2:] == amended["terms_hash_keccak"]
    assert len(registrar.sent_txs) == 4 and [versions(p) for p in pids] == [2, 1, 1]
    a.close()

    # restart: the whole (not yet compacted) history is re-read; superseded terms of p1 are not registered again
    # (one message per poll: the superseded record of p1 arrives in its own batch before the amendment)
    b = agent()
    step_until(b, lambda: len(b.receipts) >= 3, max_messages=1)
    b.close()
    assert len(registrar.sent_txs) == 4 and [versions(p) for p in pids] == [2, 1, 1]
    assert sorted((r["prosumer_id"], r["version"]) for r in b.receipts) == [("p1", 2), ("p2", 1), ("p3", 1)]

    published = [Serde().decode(m.value())[1] for m in read_topic(receipts_t, 10)]
    assert len(published) == 10 and len({r["event_id"] for r in published}) == 4
    (dead,) = [Serde().decode(m.value())[1] for m in read_topic(dlq, 1)]
    assert (dead["source_topic"], dead["stage"], dead["original"]) == (enrol, "terms", b"\x00not avro")

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
    assert rep["block_number"] == a.receipts[-1]["block_number"]  # the block of the amendment
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


def test_registered_after_chain_outage(tmp_path, test_settings, kafka_bootstrap, unique_topic):
    port = free_port()
    account = load_account(embedded_chain=True, env={})
    with EmbeddedAnvil(tmp_path, port=port, block_time_s=1) as node:  # deploy, then the node goes down
        address = ensure_deployed(Web3(Web3.HTTPProvider(node.rpc_url)), account, tmp_path)[
            "ContractTermsRegistry"
        ]
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 5}))
    client = TermsRegistryClient(w3, address, account, poll_s=0.05)
    registrar = TermsRegistrar(client, TermsConfig(confirmations=1, backoff_initial_s=0.1, backoff_max_s=0.5))
    enrol = unique_topic("enrol")
    agent = TermsAgent(
        test_settings,
        registrar,
        topic=enrol,
        receipts_topic=unique_topic("terms"),
        deadletter_topic=unique_topic("dlq"),
        group_id=f"terms-{uuid.uuid4().hex[:8]}",
    )
    try:
        agg = f"agg-{uuid.uuid4().hex[:8]}"
        send(kafka_bootstrap, enrol, [enrolment_event(prosumer(agg, "p1"), T0)])
        step_until(agent, lambda: agent.failures >= 3)  # chain down: reported and retried, nothing committed
        assert agent.receipts == [] and agent.last_error is not None
        (tp,) = agent.consumer.committed([TopicPartition(enrol, 0)], timeout=10)
        assert tp.offset < 1  # nothing committed past the pending enrolment (offset 0)
        with EmbeddedAnvil(tmp_path, port=port, block_time_s=1):  # back with its state: the contract is there
            step_until(agent, lambda: len(agent.receipts) >= 1)
            assert client.latest_version(contract_key(agg, "p1")) == 1 and len(registrar.sent_txs) == 1
            (tp,) = agent.consumer.committed([TopicPartition(enrol, 0)], timeout=10)
            assert tp.offset == 1
    finally:
        agent.close()
