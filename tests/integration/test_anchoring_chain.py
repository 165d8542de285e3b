"""Anchoring against a real anvil node and real chDB: anchor, verify, detect tampering and missing rows,
survive a kill between transaction and receipt, keep anchors across node restarts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from web3 import Web3

from edream.embedded.anvil import EmbeddedAnvil, ensure_deployed
from streams.anchoring.anchorer import AnchorConfig, Anchorer
from streams.anchoring.chain import AnchorRegistryClient
from streams.anchoring.keys import ANVIL_DEV_ACCOUNT_0, load_account
from streams.anchoring.merkle import root_of
from streams.anchoring.service import AnchoringService
from streams.anchoring.store import AnchorStore
from streams.anchoring.windows import WindowGrouper
from tools.sim.settlements import synthetic_settlement

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def anvil(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("anvil")
    node = EmbeddedAnvil(data_dir, block_time_s=1).start()
    try:
        yield node, data_dir
    finally:
        node.stop()


@pytest.fixture(scope="module")
def registry(anvil):
    node, data_dir = anvil
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    account = load_account(embedded_chain=True, env={})
    assert account.address == ANVIL_DEV_ACCOUNT_0
    return w3, account, ensure_deployed(w3, account, data_dir)["AnchorRegistry"]


@pytest.fixture
def service(registry, chdb_client, unique_table):
    w3, account, address = registry
    store = AnchorStore(
        chdb_client,
        {"FLEX": unique_table("sflex"), "MARKET": unique_table("smarket")},
        anchors_table=unique_table("anchors"),
        leaves_table=unique_table("leaves"),
    )
    store.ensure_tables(settlements=True)
    client = AnchorRegistryClient(w3, address, account, poll_s=0.05)
    return AnchoringService(client, store, Anchorer(client, AnchorConfig(confirmations=2)))


def _windows(records):
    g = WindowGrouper()
    for r in records:
        g.add(r)
    return g.flush()


def test_anchor_verify_and_detect_tampering(service, unique_table):
    # unique kinds per test run would need new contracts; unique slots keep windows distinct instead
    slot = int(unique_table("x")[-6:], 16) % 50_000
    flex = [synthetic_settlement(i, slot=slot) for i in range(9)]
    market = [synthetic_settlement(i, kind="MARKET", slot=slot) for i in range(4)]
    service.store.insert_settlements("FLEX", flex)
    service.store.insert_settlements("MARKET", market)
    receipts = service.anchor(_windows(flex + market))
    assert sorted((r["kind"], r["record_count"]) for r in receipts) == [("FLEX", 9), ("MARKET", 4)]
    flex_receipt = next(r for r in receipts if r["kind"] == "FLEX")
    assert flex_receipt["merkle_root"] == "0x" + root_of(flex).hex() and flex_receipt["confirmations"] >= 2
    assert service.store.receipt("FLEX", flex_receipt["window_id"])["tx_hash"] == flex_receipt["tx_hash"]

    wid = flex_receipt["window_id"]
    assert service.verify_window("FLEX", wid).valid
    rec = service.verify_record(flex[3]["settlement_id"])
    assert rec.valid and rec.proof and rec.on_chain_root == flex_receipt["merkle_root"]

    table = service.store.settlement_tables["FLEX"]
    service.store.client.command(
        f"ALTER TABLE {table} UPDATE amount_micro = amount_micro + 1 WHERE settlement_id = "
        f"'{flex[3]['settlement_id']}' SETTINGS mutations_sync = 1"
    )
    report = service.verify_window("FLEX", wid)
    assert not report.valid and report.tampered == [flex[3]["settlement_id"]] and report.missing == []
    tampered = service.verify_record(flex[3]["settlement_id"])
    assert not tampered.valid and "tampered row" in tampered.problems[0]

    service.store.client.command(
        f"ALTER TABLE {table} DELETE WHERE settlement_id = '{flex[5]['settlement_id']}' SETTINGS mutations_sync = 1"
    )
    report = service.verify_window("FLEX", wid)
    assert report.missing == [flex[5]["settlement_id"]] and report.tampered == [flex[3]["settlement_id"]]
    assert "missing row" in service.verify_record(flex[5]["settlement_id"]).problems[0]
    # the untouched MARKET window still verifies
    assert service.verify_window(
        "MARKET", receipts[1]["window_id"] if receipts[1]["kind"] == "MARKET" else receipts[0]["window_id"]
    ).valid


KILL_AFTER_SEND = textwrap.dedent("""
    import os, signal, sys
    from web3 import Web3
    from streams.anchoring.anchorer import AnchorConfig, Anchorer
    from streams.anchoring.chain import AnchorRegistryClient
    from streams.anchoring.keys import load_account
    from tools.sim.settlements import synthetic_settlement
    from streams.anchoring.windows import WindowGrouper

    rpc, address, slot = sys.argv[1], sys.argv[2], int(sys.argv[3])
    g = WindowGrouper()
    for i in range(5):
        g.add(synthetic_settlement(i, slot=slot))
    client = AnchorRegistryClient(Web3(Web3.HTTPProvider(rpc)), address, load_account(True, {}))

    def die(tx_hash):
        print(tx_hash, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    Anchorer(client, AnchorConfig(confirmations=1), on_sent=die).anchor_window(g.flush()[0])
""")


def test_killed_between_tx_and_receipt_no_double_anchor(anvil, service, unique_table):
    node, _ = anvil
    slot = 60_000 + int(unique_table("x")[-6:], 16) % 50_000
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_SEND, node.rpc_url, service.client.address, str(slot)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr
    sent_tx = proc.stdout.strip()
    records = [synthetic_settlement(i, slot=slot) for i in range(5)]
    service.store.insert_settlements("FLEX", records)
    (receipt,) = service.anchor(_windows(records))  # the restarted agent replays the window
    assert receipt["tx_hash"] == sent_tx and service.anchorer.sent_txs == []
    events = service.client.contract.events.Anchored().get_logs(
        from_block=0, argument_filters={"key": service.client.key_of("FLEX", receipt["window_id"])}
    )
    assert len(events) == 1
    assert service.verify_window("FLEX", receipt["window_id"]).valid


def test_anchors_survive_node_restart(tmp_path):
    account = load_account(embedded_chain=True, env={})
    with EmbeddedAnvil(tmp_path, block_time_s=None) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        address = ensure_deployed(w3, account, tmp_path)["AnchorRegistry"]
        client = AnchorRegistryClient(w3, address, account, poll_s=0.05)
        receipt = Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(
            _windows([synthetic_settlement(i) for i in range(3)])[0]
        )
    assert (tmp_path / "anvil" / "state.json").exists()
    with EmbeddedAnvil(tmp_path, block_time_s=None) as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        assert ensure_deployed(w3, account, tmp_path)["AnchorRegistry"] == address  # not redeployed
        got = AnchorRegistryClient(w3, address).get_anchor("FLEX", receipt["window_id"])
        assert got is not None and "0x" + got.root.hex() == receipt["merkle_root"]


def test_cli_verify_window_and_record(service, unique_table, monkeypatch):
    import json

    from typer.testing import CliRunner

    from streams.anchoring import cli

    slot = 120_000 + int(unique_table("x")[-6:], 16) % 50_000
    records = [synthetic_settlement(i, kind="MARKET", slot=slot) for i in range(3)]
    service.store.insert_settlements("MARKET", records)
    (receipt,) = service.anchor(_windows(records))
    monkeypatch.setattr(cli, "_service", lambda *a: service)
    runner = CliRunner()
    ok = runner.invoke(cli.app, ["window", "market", receipt["window_id"]])
    assert ok.exit_code == 0 and ok.output.startswith("VALID")
    assert json.loads(ok.output.strip().splitlines()[-1])["recomputed_root"] == receipt["merkle_root"]
    rec = runner.invoke(cli.app, ["record", records[1]["settlement_id"]])
    last = json.loads(rec.output.strip().splitlines()[-1])
    assert (
        rec.exit_code == 0 and last["status"] == "VALID" and last["on_chain_root"] == receipt["merkle_root"]
    )
    table = service.store.settlement_tables["MARKET"]
    service.store.client.command(
        f"ALTER TABLE {table} UPDATE quantity_wh = 0 WHERE settlement_id = "
        f"'{records[1]['settlement_id']}' SETTINGS mutations_sync = 1"
    )
    bad = runner.invoke(cli.app, ["window", "MARKET", receipt["window_id"]])
    assert bad.exit_code == 1 and "tampered row: settlement " + records[1]["settlement_id"] in bad.output
