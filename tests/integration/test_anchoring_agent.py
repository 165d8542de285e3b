"""The anchoring agent on a real broker, real anvil and real chDB: windows close by event time, receipts are
published, late records rejected, and a restarted agent resumes without double anchoring."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from edream.serde import Serde
from streams.anchoring.agent import AnchoringAgent
from streams.anchoring.anchorer import AnchorConfig, Anchorer
from streams.anchoring.chain import AnchorRegistryClient
from streams.anchoring.keys import load_account
from streams.anchoring.service import AnchoringService
from streams.anchoring.store import AnchorStore
from streams.anchoring.synthetic import synthetic_settlement

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("anvil-agent")
    with EmbeddedAnvil(data_dir, block_time_s=1, persist=False) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        account = load_account(embedded_chain=True, env={})
        yield w3, account, ensure_deployed(w3, account, data_dir)["AnchorRegistry"]


def _read_all(bootstrap: str, topic: str, expected: int) -> list[dict]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join: faster
    serde, out = Serde(), []
    for _ in range(30):
        for m in c.consume(100, 1.0):
            if not m.error():
                out.append(serde.decode(m.value())[1])
        if len(out) >= expected:
            break
    c.close()
    return out


def test_agent_anchors_rejects_late_and_resumes(
    chain, test_settings, kafka_bootstrap, unique_topic, chdb_client, unique_table
):
    w3, account, address = chain
    src, receipts_t, rejections_t = unique_topic("settle"), unique_topic("receipts"), unique_topic("reject")
    store = AnchorStore(
        chdb_client,
        {"FLEX": unique_table("sflex"), "MARKET": unique_table("smarket")},
        anchors_table=unique_table("anchors"),
        leaves_table=unique_table("leaves"),
    )
    store.ensure_tables(settlements=True)
    client = AnchorRegistryClient(w3, address, account, poll_s=0.05)
    group = f"anchoring-{uuid.uuid4().hex[:8]}"

    def agent() -> AnchoringAgent:
        service = AnchoringService(client, store, Anchorer(client, AnchorConfig(confirmations=2)))
        return AnchoringAgent(
            test_settings,
            service,
            topics=(src,),
            receipts_topic=receipts_t,
            rejections_topic=rejections_t,
            group_id=group,
        )

    base = 200_000 + uuid.uuid4().int % 100_000
    producer, serde = Producer({"bootstrap.servers": kafka_bootstrap}), Serde()

    def send(records):
        for r in records:
            producer.produce(src, key=r["window_id"].encode(), value=serde.encode("Settlement", r, src))
        producer.flush(10)

    slot0 = [synthetic_settlement(i, slot=base) for i in range(4)]
    slot1 = [synthetic_settlement(i, slot=base + 1) for i in range(2)]
    slot2 = [synthetic_settlement(0, slot=base + 2)]
    send(slot0 + slot0[:2] + slot1 + slot2)  # duplicates: at-least-once delivery

    first = agent()
    got: list[dict] = []
    for _ in range(30):
        got += first.step(timeout_s=0.5)
        if len(got) >= 2:
            break
    assert [r["record_count"] for r in got] == [4, 2]  # slot 2 stays open: its grace period has not passed
    send([synthetic_settlement(9, slot=base)])  # late for slot 0
    for _ in range(5):
        first.step(timeout_s=0.5)
    first.close()
    (rej,) = _read_all(kafka_bootstrap, rejections_t, 1)
    assert (rej["code"], rej["subject_id"]) == ("LATE_FOR_ANCHOR", f"st-FLEX-{base}-9")

    # restart: the open slot 2 is replayed from the committed offset; slot 3 closes it
    send([synthetic_settlement(0, slot=base + 3)])
    second = agent()
    for _ in range(30):
        got += second.step(timeout_s=0.5)
        if len(got) >= 3:
            break
    second.close()
    assert [r["record_count"] for r in got] == [4, 2, 1]
    published = _read_all(kafka_bootstrap, receipts_t, 3)
    assert sorted(r["window_id"] for r in published) == sorted(r["window_id"] for r in got)
    for r in got:
        events = client.contract.events.Anchored().get_logs(
            from_block=0, argument_filters={"key": client.key_of("FLEX", r["window_id"])}
        )
        assert len(events) == 1
        assert store.receipt("FLEX", r["window_id"])["merkle_root"] == r["merkle_root"]
