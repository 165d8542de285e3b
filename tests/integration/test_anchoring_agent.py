"""The anchoring stage on the one runtime, with the real broker, real anvil and real chDB: windows close on
wall-clock ticks, receipts and manifests are published, late records rejected; a restart with the local state
deleted anchors nothing twice and every anchored window verifies VALID; two workers give the same anchors as one."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from web3 import Web3

from edream.avro_schemas import contract
from edream.clickhouse import RowEncoder, insert_rows
from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from edream.runtime.supervisor import StageSupervisor
from edream.serde import Serde
from streams.agents.anchoring import stage
from streams.anchoring.chain import AnchorRegistryClient, deploy
from streams.anchoring.keys import ANVIL_DEV_ACCOUNT_0_KEY, load_account
from streams.anchoring.merkle import root_of
from streams.anchoring.service import AnchoringService
from streams.anchoring.store import AnchorStore
from streams.anchoring.windows import WindowKey
from tools.sim.settlements import SLOT_MS, synthetic_settlement

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = {"retention.ms": "3600000", "cleanup.policy": "delete"}
CANONICAL = (
    "settlement.flex.v1",
    "settlement.market.v1",
    "chain.anchor.receipts.v1",
    "chain.anchor.leaves.v1",
    "platform.rejections.v1",
    "platform.deadletter.v1",
)
SERDE = Serde()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("anvil-agent")
    with EmbeddedAnvil(data_dir, block_time_s=1, persist=False) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        account = load_account(embedded_chain=True, env={})
        yield node, w3, account, ensure_deployed(w3, account, data_dir)["AnchorRegistry"]


def _topics(bootstrap: str, inputs: dict[str, str] | None = None) -> dict[str, str]:
    """Fresh topics (4 partitions) named ``<canonical>.<suffix>``; ``inputs`` reuses given ones."""
    suffix = uuid.uuid4().hex[:8]
    names = {c: f"{c}.{suffix}" for c in CANONICAL}
    names.update(inputs or {})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [NewTopic(n, 4, 1, config=CONFIG) for c, n in names.items() if c not in (inputs or {})]
    for fut in admin.create_topics(new).values():
        fut.result(15)
    return names


def _settings(test_settings, node, tmp_path, name: str):
    return test_settings.model_copy(
        update={
            "eth_rpc_url": node.rpc_url,
            "edream_app_id": f"anchor-{name}-{uuid.uuid4().hex[:6]}",
            "edream_data_dir": tmp_path / name,
            "anchor_window_minutes": 1.0,
            "anchor_grace_minutes": 0.05,  # 3 s
        }
    )


def _start(settings, names) -> tuple[StageSupervisor, threading.Thread]:
    spec = stage(settings, SimpleNamespace(topics=[SimpleNamespace(name=n) for n in names.values()]))
    sup = StageSupervisor(spec, settings, names["platform.deadletter.v1"], None, 4, handle_signals=False)
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    return sup, t


def _stop(sup: StageSupervisor, t: threading.Thread) -> None:
    sup.stop()
    t.join(60)
    assert not t.is_alive()


def _send(bootstrap: str, names: dict[str, str], records: list[dict]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for r in records:
        topic = names[f"settlement.{r['kind'].lower()}.v1"]
        producer.produce(topic, key=r["window_id"].encode(), value=SERDE.encode("Settlement", r, topic))
    producer.flush(10)


def _decoded(read_topic, topic: str, n: int, timeout: float = 90) -> list[dict]:
    return [SERDE.decode(m.value())[1] for m in read_topic(topic, n, timeout=timeout)]


def _now_minute() -> int:
    now = int(time.time() * 1000)
    return now - now % 60_000


def test_stage_anchors_rejects_late_and_survives_lost_state(
    chain, test_settings, kafka_bootstrap, read_topic, chdb_client, unique_table, tmp_path, monkeypatch
):
    node, w3, account, address = chain
    monkeypatch.setenv("ETH_PRIVATE_KEY", ANVIL_DEV_ACCOUNT_0_KEY)
    monkeypatch.setenv("ANCHOR_REGISTRY_ADDRESS", address)
    client = AnchorRegistryClient(w3, address)
    names = _topics(kafka_bootstrap)
    settings = _settings(test_settings, node, tmp_path, "one")
    t0 = _now_minute() - 4 * SLOT_MS  # slots 0..2 lie in the past: due at the first tick after they are read
    slot0 = [synthetic_settlement(i, slot=0, t0_ms=t0) for i in range(4)]
    market0 = [synthetic_settlement(i, kind="MARKET", slot=0, t0_ms=t0) for i in range(2)]
    slot1 = [synthetic_settlement(i, slot=1, t0_ms=t0) for i in range(2)]
    open_start = _now_minute() + 270_000  # a window ending 5 min from now stays open during the test
    still_open = synthetic_settlement(
        0, slot=9, t0_ms=t0, window_start=open_start, window_end=open_start + 60_000, computed_at=t0
    )
    _send(kafka_bootstrap, names, slot0 + slot0[:2] + market0 + slot1 + [still_open])  # with duplicates

    sup, t = _start(settings, names)
    first = _decoded(read_topic, names["chain.anchor.receipts.v1"], 3)
    assert sorted((r["kind"], r["record_count"]) for r in first) == [("FLEX", 2), ("FLEX", 4), ("MARKET", 2)]
    flex0 = next(r for r in first if r["kind"] == "FLEX" and r["record_count"] == 4)
    assert flex0["merkle_root"] == "0x" + root_of(slot0).hex() and flex0["confirmations"] >= 2
    _send(kafka_bootstrap, names, [synthetic_settlement(9, slot=0, t0_ms=t0)])  # late for slot 0
    (rej,) = _decoded(read_topic, names["platform.rejections.v1"], 1)
    assert (rej["code"], rej["subject_id"]) == ("LATE_FOR_ANCHOR", f"st-FLEX-{0}-9")
    _stop(sup, t)

    # the local state is lost: it comes back from the changelog; nothing is anchored twice, the open window
    # stays open, and slot 2 (new) is anchored
    shutil.rmtree(sup.state_dir)
    slot2 = [synthetic_settlement(i, slot=2, t0_ms=t0) for i in range(3)]
    _send(kafka_bootstrap, names, slot2 + slot0[:1])
    sup, t = _start(settings, names)
    receipts = _decoded(read_topic, names["chain.anchor.receipts.v1"], 4)
    time.sleep(8)  # more ticks: nothing else may be anchored
    _stop(sup, t)
    receipts = _decoded(read_topic, names["chain.anchor.receipts.v1"], 10, timeout=10)
    slot2_window = WindowKey.containing("FLEX", slot2[0]["window_start"], 60_000).window_id
    assert {(r["kind"], r["window_id"], r["record_count"]) for r in receipts} == {
        (r["kind"], r["window_id"], r["record_count"]) for r in first
    } | {("FLEX", slot2_window, 3)}
    assert len({r["event_id"] for r in receipts}) == 4 and len(receipts) == 4
    assert (
        len(_decoded(read_topic, names["platform.rejections.v1"], 5, timeout=5)) == 1
    )  # re-delivery absorbed
    for r in receipts:
        events = client.contract.events.Anchored().get_logs(
            from_block=0, argument_filters={"key": client.key_of(r["kind"], r["window_id"])}
        )
        assert len(events) == 1

    # every anchored window verifies VALID from the stored rows, the manifests the stage published and the chain
    store = AnchorStore(
        chdb_client,
        {"FLEX": unique_table("sflex"), "MARKET": unique_table("smarket")},
        anchors_table=unique_table("anchors"),
        leaves_table=unique_table("leaves"),
    )
    store.ensure_tables(settlements=True)
    store.insert_settlements("FLEX", slot0 + slot1 + slot2 + [still_open])
    store.insert_settlements("MARKET", market0)
    leaves = _decoded(read_topic, names["chain.anchor.leaves.v1"], 11)
    enc = RowEncoder(contract("AnchorLeaf"))
    insert_rows(chdb_client, store.leaves_table, enc.columns, [enc.row(x) for x in leaves])
    service = AnchoringService(client, store)
    for r in receipts:
        report = service.verify_window(r["kind"], r["window_id"])
        assert report.valid and report.manifest_authentic, report.problems
    proof = service.verify_record(slot2[1]["settlement_id"])
    assert proof.valid and proof.on_chain_root == "0x" + root_of(slot2).hex()


def test_two_workers_anchor_the_same_as_one(
    chain, test_settings, kafka_bootstrap, read_topic, tmp_path, monkeypatch
):
    node, w3, account, _ = chain
    monkeypatch.setenv("ETH_PRIVATE_KEY", ANVIL_DEV_ACCOUNT_0_KEY)
    t0 = _now_minute() - 20 * SLOT_MS
    records = [
        synthetic_settlement(i, kind=kind, slot=s, t0_ms=t0)
        for s in range(6)
        for kind in ("FLEX", "MARKET")
        for i in range(s + 1)
    ]
    inputs = _topics(kafka_bootstrap)
    _send(kafka_bootstrap, inputs, records)
    runs = {}
    for workers in (1, 2):
        address, _ = deploy(w3, account, "AnchorRegistry")  # a fresh registry per run: both really anchor
        monkeypatch.setenv("ANCHOR_REGISTRY_ADDRESS", address)
        names = _topics(
            kafka_bootstrap, {k: inputs[k] for k in ("settlement.flex.v1", "settlement.market.v1")}
        )
        settings = _settings(test_settings, node, tmp_path, f"w{workers}")
        started = [
            _start(settings.model_copy(update={"edream_data_dir": settings.edream_data_dir / f"{k}"}), names)
            for k in range(workers)
        ]
        got = _decoded(read_topic, names["chain.anchor.receipts.v1"], 12, timeout=180)
        if workers == 2:
            assert all(s.health.events_in > 0 for s, _ in started), "both workers must get partitions"
        for s, t in started:
            _stop(s, t)
        runs[workers] = got
        assert len(AnchorRegistryClient(w3, address).contract.events.Anchored().get_logs(from_block=0)) == 12

    def anchors(rs):
        return sorted((r["kind"], r["window_id"], r["merkle_root"], r["record_count"]) for r in rs)

    assert len(runs[1]) == 12 and anchors(runs[1]) == anchors(runs[2])
