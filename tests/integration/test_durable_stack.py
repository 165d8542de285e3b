"""The embedded stack survives ``kill -9``: real Tansu on the SeaweedFS S3 store, real anvil.

* every child dies with the killed parent (parent-death signal), within seconds;
* a new run on the same data dir starts (no port, lock or state file in the way) and finds the topic, every
  record, the consumer group's committed offset, the contracts and an anchor confirmed before the kill;
* two anvils never share a state file.

Limit found: anvil persists its chain by rewriting ``--state`` every ``--state-interval`` seconds (1 s at the
least) and has no per-block persistence, so a kill within that second after a block loses the block; two
confirmations at 1-s blocks can arrive in under a second (the anchor's block is mined at once, the next one at
the next 1-s tick). The test kills after that interval; the residual window is reported in the README.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, StateFileLocked
from streams.anchoring.chain import AnchorRegistryClient
from streams.anchoring.keys import load_account

pytestmark = pytest.mark.integration

CHILD = Path(__file__).with_name("stack_child.py")
TOPIC = "durable.test.v1"
N = 2000
STATE_INTERVAL_S = 1


def start_stack(data_dir: Path) -> tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "ETH_RPC_URL"}}
    env.update(EDREAM_DATA_DIR=str(data_dir), EDREAM_BROKER_STORAGE="s3")
    proc = subprocess.Popen(
        [sys.executable, str(CHILD)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"stack did not start: {proc.stderr.read()[-3000:]}")
    return proc, json.loads(line)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: dict[str, int], timeout: float = 5.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(gone(p) for p in pids.values()):
        time.sleep(0.1)
    return {name: pid for name, pid in pids.items() if not gone(pid)}


def produce(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(10)
    errors: list = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(N):
        p.produce(
            TOPIC,
            f"value-{i}".encode(),
            key=f"k{i}".encode(),
            on_delivery=lambda e, m: e and errors.append(e),
        )
        p.poll(0)
    assert p.flush(30) == 0 and not errors, errors


def consume(bootstrap: str, group: str, limit: int, commit: bool) -> dict[str, str]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(TOPIC, p, OFFSET_BEGINNING) for p in (0, 1)])  # no group join: fast
    got: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(got) < limit and time.monotonic() < deadline:
        batch = [m for m in c.consume(min(500, limit - len(got)), 1.0) if not m.error()]
        got.update((m.key().decode(), m.value().decode()) for m in batch)
        if commit and batch:
            c.commit(asynchronous=False)
    c.close()
    return got


def committed(bootstrap: str, group: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    offsets = c.committed([TopicPartition(TOPIC, p) for p in (0, 1)], timeout=10)
    c.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def test_kill9_leaves_no_child_and_a_restart_finds_log_offsets_and_anchors(tmp_path):
    run1, info1 = start_stack(tmp_path)
    try:
        produce(info1["bootstrap"])
        assert len(consume(info1["bootstrap"], "g-half", N // 2, commit=True)) == N // 2
        w3 = Web3(Web3.HTTPProvider(info1["eth_rpc_url"]))
        client = AnchorRegistryClient(
            w3, info1["contracts"]["AnchorRegistry"], load_account(embedded_chain=True, env={}), poll_s=0.05
        )
        root = bytes(range(32))
        receipt = client.wait_receipt(client.send_anchor("FLEX", "w-kill9", root, 7, 1000, 2000), 30)
        client.wait_confirmations(receipt["blockNumber"], 2, 30)  # what the anchorer waits for
        time.sleep(STATE_INTERVAL_S + 0.5)  # anvil dumps its state every second (see the module docstring)
    finally:
        run1.send_signal(signal.SIGKILL)
        run1.wait(10)
    assert wait_gone(info1["children"]) == {}, "children outlived the killed parent"

    run2, info2 = start_stack(tmp_path)
    try:
        records = consume(info2["bootstrap"], "g-all", N, commit=False)
        assert records == {f"k{i}": f"value-{i}" for i in range(N)}
        assert committed(info2["bootstrap"], "g-half") == N // 2
        assert info2["contracts"] == info1["contracts"]
        w3 = Web3(Web3.HTTPProvider(info2["eth_rpc_url"]))
        anchor = AnchorRegistryClient(w3, info2["contracts"]["AnchorRegistry"]).get_anchor("FLEX", "w-kill9")
        assert anchor is not None and anchor.root == root and anchor.count == 7
    finally:
        run2.send_signal(signal.SIGTERM)
        run2.wait(30)
    assert wait_gone(info2["children"]) == {}
    assert list((tmp_path / "run").glob("*.json")) == []  # a clean stop leaves no child record


def test_a_second_anvil_on_the_same_state_file_is_refused(tmp_path):
    first = EmbeddedAnvil(tmp_path, block_time_s=None).start()
    try:
        with pytest.raises(StateFileLocked, match=rf"anvil pid {first.process.proc.pid}\b"):
            EmbeddedAnvil(tmp_path, block_time_s=None).start()
    finally:
        first.stop()
    with EmbeddedAnvil(tmp_path, block_time_s=None):  # free again once the first has stopped
        pass
