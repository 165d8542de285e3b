"""Anchorer idempotency, crash recovery, conflicts and retries, on a real in-process EVM (eth-tester)."""

from __future__ import annotations

import pytest

from streams.anchoring.anchorer import AnchorConfig, AnchorConflict, Anchorer, AnchorRejected
from streams.anchoring.chain import AnchorRegistryClient, deploy
from streams.anchoring.windows import WindowGrouper
from tools.sim.settlements import synthetic_settlement


class Crash(BaseException):
    """Simulated process death (BaseException: not swallowed by the retry loop)."""


def _batch(n: int, slot: int = 0, kind: str = "FLEX", **override):
    g = WindowGrouper()
    for i in range(n):
        g.add(synthetic_settlement(i, kind=kind, slot=slot, **override))
    (batch,) = g.flush()
    return batch


@pytest.fixture
def client(tester_chain):
    w3, owner, _ = tester_chain
    address, _ = deploy(w3, owner, "AnchorRegistry")
    return AnchorRegistryClient(w3, address, owner, poll_s=0.01)


def _anchored_events(client: AnchorRegistryClient) -> list:
    return client.contract.events.Anchored().get_logs(from_block=0)


def test_anchor_produces_receipt(client):
    batch = _batch(5)
    receipt = Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(batch)
    on_chain = client.get_anchor("FLEX", batch.key.window_id)
    assert receipt["merkle_root"] == "0x" + on_chain.root.hex()
    assert receipt["record_count"] == 5 == on_chain.count
    assert (receipt["window_start"], receipt["window_end"]) == (batch.key.start_ms, batch.key.end_ms)
    assert receipt["block_number"] == on_chain.block_number and receipt["gas_used"] > 21_000
    assert receipt["anchored_at"] % 1000 == 0 and receipt["anchored_at"] > 0
    assert receipt["contract_address"] == client.address and receipt["chain_id"] == client.chain_id


def test_second_run_does_not_anchor_again(client):
    batch = _batch(4)
    first = Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(batch)
    again = Anchorer(client, AnchorConfig(confirmations=1))
    assert again.anchor_window(batch) == first
    assert again.sent_txs == [] and len(_anchored_events(client)) == 1


def test_crash_after_send_then_resume(client):
    batch = _batch(3)

    def die(tx_hash: str) -> None:
        raise Crash(tx_hash)

    crashing = Anchorer(client, AnchorConfig(confirmations=1), on_sent=die)
    with pytest.raises(Crash):
        crashing.anchor_window(batch)
    (sent,) = crashing.sent_txs
    resumed = Anchorer(client, AnchorConfig(confirmations=1))
    receipt = resumed.anchor_window(batch)
    assert receipt["tx_hash"] == sent and resumed.sent_txs == []
    assert len(_anchored_events(client)) == 1


def test_changed_records_after_anchoring_are_a_conflict(client):
    Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(_batch(3))
    with pytest.raises(AnchorConflict, match="anchored with root"):
        Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(_batch(3, amount_micro=1))
    with pytest.raises(AnchorConflict):
        Anchorer(client, AnchorConfig(confirmations=1)).anchor_window(_batch(4))


def test_unauthorised_key_is_rejected_not_retried(tester_chain, client):
    w3, _, stranger = tester_chain
    sleeps: list[float] = []
    anchorer = Anchorer(
        AnchorRegistryClient(w3, client.address, stranger), AnchorConfig(confirmations=1), sleep=sleeps.append
    )
    with pytest.raises(AnchorRejected, match="NotWriter"):
        anchorer.anchor_window(_batch(2))
    assert sleeps == []


class FlakyClient:
    """Delegates to a real client but fails the first ``failures`` calls of ``method`` like a dead node."""

    def __init__(self, inner: AnchorRegistryClient, method: str, failures: int):
        self._inner, self._method, self.failures = inner, method, failures

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name != self._method:
            return attr

        def flaky(*args, **kwargs):
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("connection refused")
            return attr(*args, **kwargs)

        return flaky


@pytest.mark.parametrize(
    ("method", "expected_sleeps"),
    [
        ("get_anchor", [0.5, 1.0, 2.0, 2.0]),
        ("send_anchor", [0.5, 1.0, 2.0, 2.0]),
        # the tx was mined during the outage: the retry finds it on-chain and never asks for the receipt again
        ("wait_receipt", [0.5]),
        ("wait_confirmations", [0.5, 1.0, 2.0, 2.0]),
    ],
)
def test_retries_with_backoff_through_outage(client, method, expected_sleeps):
    sleeps: list[float] = []
    flaky = FlakyClient(client, method, failures=4)
    cfg = AnchorConfig(confirmations=1, backoff_initial_s=0.5, backoff_max_s=2.0)
    receipt = Anchorer(flaky, cfg, sleep=sleeps.append).anchor_window(_batch(3))  # type: ignore[arg-type]
    assert sleeps == expected_sleeps
    assert receipt["record_count"] == 3 and len(_anchored_events(client)) == 1


def test_gives_up_after_max_attempts(client):
    flaky = FlakyClient(client, "get_anchor", failures=10)
    cfg = AnchorConfig(confirmations=1, max_attempts=3)
    with pytest.raises(ConnectionError):
        Anchorer(flaky, cfg, sleep=lambda s: None).anchor_window(_batch(1))  # type: ignore[arg-type]


def test_waits_for_confirmations(tester_chain, client):
    w3, _, _ = tester_chain
    mined: list[float] = []

    def mine_instead_of_sleeping(seconds: float) -> None:
        mined.append(seconds)
        w3.provider.ethereum_tester.mine_blocks(1)

    slow = AnchorRegistryClient(
        w3, client.address, client.account, poll_s=0.01, sleep=mine_instead_of_sleeping
    )
    receipt = Anchorer(slow, AnchorConfig(confirmations=3)).anchor_window(_batch(2))
    assert receipt["confirmations"] == 3 and len(mined) == 2
    assert w3.eth.block_number == receipt["block_number"] + 2


def test_empty_window_refused(client):
    from streams.anchoring.windows import WindowBatch, WindowKey

    with pytest.raises(ValueError, match="no records"):
        Anchorer(client).anchor_window(WindowBatch(WindowKey("FLEX", 0, 1)))
