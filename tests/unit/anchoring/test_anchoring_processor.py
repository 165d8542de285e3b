"""The anchoring stage's processor with MemoryState on a real in-process EVM (eth-tester): windows closed by ticks,
one anchor per window across restarts and lost state, late records, conflicts, outages, purge, bounded cost."""

from __future__ import annotations

import pytest
from counting_state import CountingState
from web3 import Web3

from edream.runtime.contract import Emit, Record, TransientError
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.anchoring.anchorer import AnchorConfig, Anchorer
from streams.anchoring.chain import AnchorRegistryClient, deploy
from streams.anchoring.merkle import leaf_hash, root_of
from streams.anchoring.processor import AnchoringProcessor, AnchoringTopics, WindowTiming, window_of
from streams.anchoring.window_state import DueIndex
from streams.validation.fields import InvalidRecord
from streams.validation.limits import Limits
from tools.sim.settlements import SLOT_MS, T0_MS, synthetic_settlement

TOPICS = AnchoringTopics("receipts", "leaves", "rejections")
TIMING = WindowTiming(period_ms=SLOT_MS, grace_ms=60_000, retain_ms=31 * 86_400_000)
NOW = T0_MS + 86_400_000  # the wall clock of these tests: one day after the synthetic settlements' day
SERDE = Serde()


class Crash(BaseException):
    """Simulated process death (not an Exception: nothing converts it)."""


@pytest.fixture
def client(tester_chain):
    w3, owner, _ = tester_chain
    address, _ = deploy(w3, owner, "AnchorRegistry")
    return AnchorRegistryClient(w3, address, owner, poll_s=0.01)


def processor(client, **kw) -> tuple[AnchoringProcessor, list[Anchorer]]:
    made: list[Anchorer] = []

    def connect() -> Anchorer:
        made.append(Anchorer(client, AnchorConfig(confirmations=1, max_attempts=1), **kw))
        return made[-1]

    return AnchoringProcessor(SERDE, TOPICS, TIMING, connect, Limits(), wall_clock=lambda: NOW), made


def rec(r: dict, offset: int = 0) -> Record:
    topic = f"settlement.{r['kind'].lower()}.v1"
    return Record(topic, 0, offset, None, SERDE.encode("Settlement", r, topic), NOW)


def feed(p: AnchoringProcessor, state: MemoryState, records: list[dict]) -> list[Emit]:
    return [e for i, r in enumerate(records) for e in p.on_record(rec(r, i), state)]


def tick(p: AnchoringProcessor, state: MemoryState, now_ms: int) -> list[Emit]:
    """A tick applied like the runtime does: its writes reach the state only if it succeeds."""
    scratch = MemoryState()
    scratch.data = dict(state.data)
    out = list(p.on_tick(now_ms, 0, scratch))
    state.data = scratch.data
    return out


def decoded(emits: list[Emit], topic: str) -> list[dict]:
    return [SERDE.decode(e.value)[1] for e in emits if e.topic == topic]


def due_at(slot: int) -> int:
    return T0_MS + (slot + 1) * SLOT_MS + TIMING.grace_ms


def anchored_events(client) -> list:
    return client.contract.events.Anchored().get_logs(from_block=0)


def test_window_anchored_once_by_tick_with_receipt_and_manifest(client):
    p, made = processor(client)
    state = MemoryState()
    flex = [synthetic_settlement(i) for i in range(4)]
    market = [synthetic_settlement(i, kind="MARKET") for i in range(2)]
    later = [synthetic_settlement(0, slot=1)]
    assert feed(p, state, flex + flex[:2] + market + later) == []  # duplicates: at-least-once delivery
    assert tick(p, state, due_at(0) - 1) == [] and made == []  # not due yet: the chain is not even touched

    out = tick(p, state, due_at(0))
    receipts = decoded(out, "receipts")
    assert sorted((r["kind"], r["record_count"]) for r in receipts) == [("FLEX", 4), ("MARKET", 2)]
    by_kind = {r["kind"]: r for r in receipts}
    assert by_kind["FLEX"]["merkle_root"] == "0x" + root_of(flex).hex()
    assert by_kind["FLEX"]["window_id"] == "2026-11-18T00:00Z/15m"
    assert {e.key for e in out if e.topic == "receipts"} == {
        b"FLEX:2026-11-18T00:00Z/15m",
        b"MARKET:2026-11-18T00:00Z/15m",
    }
    leaves = decoded(out, "leaves")
    assert sorted((x["settlement_id"], x["leaf"]) for x in leaves if x["kind"] == "FLEX") == sorted(
        (r["settlement_id"], "0x" + leaf_hash(r).hex()) for r in flex
    )
    assert len(anchored_events(client)) == 2
    assert tick(p, state, due_at(0) + 10_000) == []  # nothing due twice
    (slot1,) = decoded(tick(p, state, due_at(1)), "receipts")
    assert slot1["record_count"] == 1 and len(anchored_events(client)) == 3
    assert len(made) == 1  # connected once


def test_latest_version_wins_and_late_records_are_rejected(client):
    p, _ = processor(client)
    state = MemoryState()
    v1 = [synthetic_settlement(i) for i in range(3)]
    v2 = synthetic_settlement(1, version=2, amount_micro=7)
    feed(p, state, [v1[0], v2, v1[1], v1[2]])  # the older version arrives after the newer one
    (receipt,) = decoded(tick(p, state, due_at(0)), "receipts")
    assert receipt["merkle_root"] == "0x" + root_of([v1[0], v2, v1[2]]).hex()

    assert feed(p, state, [v2, v1[0]]) == []  # re-delivery of anchored records: absorbed
    late = feed(p, state, [synthetic_settlement(9), synthetic_settlement(2, version=3)])
    assert [(r["code"], r["subject_id"]) for r in decoded(late, "rejections")] == [
        ("LATE_FOR_ANCHOR", "st-FLEX-0-9"),
        ("LATE_FOR_ANCHOR", "st-FLEX-0-2"),
    ]
    assert tick(p, state, due_at(5)) == [] and len(anchored_events(client)) == 1


def test_lost_state_or_crash_after_send_never_anchors_twice(client):
    records = [synthetic_settlement(i) for i in range(5)]

    def die(tx_hash: str) -> None:
        raise Crash(tx_hash)

    crashing, made = processor(client, on_sent=die)
    state = MemoryState()
    feed(crashing, state, records)
    before = dict(state.data)
    with pytest.raises(Crash):
        tick(crashing, state, due_at(0))
    assert state.data == before  # the tick's writes were not applied
    (sent,) = made[0].sent_txs

    # restarted with the state lost: the records are replayed, the window is found on-chain
    p, made = processor(client)
    fresh = MemoryState()
    feed(p, fresh, list(reversed(records)))
    (receipt,) = decoded(tick(p, fresh, due_at(0)), "receipts")
    assert receipt["tx_hash"] == sent and made[0].sent_txs == [] and len(anchored_events(client)) == 1
    # and replaying again gives the identical receipt (deterministic outputs)
    again, _ = processor(client)
    other = MemoryState()
    feed(again, other, records)
    assert decoded(tick(again, other, due_at(0)), "receipts") == [receipt]


def test_changed_records_after_anchoring_are_conflicts(client):
    p, _ = processor(client)
    s1 = MemoryState()
    feed(p, s1, [synthetic_settlement(i) for i in range(3)])
    tick(p, s1, due_at(0))
    s2 = MemoryState()  # another run (lost state) that saw different records for the same window
    q, _ = processor(client)
    feed(q, s2, [synthetic_settlement(i, amount_micro=1) for i in range(3)])
    out = tick(q, s2, due_at(0))
    assert {r["code"] for r in decoded(out, "rejections")} == {"ANCHOR_CONFLICT"}
    assert len(decoded(out, "rejections")) == 3 and decoded(out, "receipts") == []
    assert tick(q, s2, due_at(0) + 1) == []  # closed: not retried every tick


def test_invalid_settlements_change_nothing(client):
    p, _ = processor(client)
    state = MemoryState()
    bad = [
        synthetic_settlement(0, window_start=NOW + 86_400_000),  # in the future
        synthetic_settlement(0, window_start=NOW - 400 * 86_400_000),  # far in the past
        synthetic_settlement(0, window_end=T0_MS - 1),  # ends before it starts
        synthetic_settlement(0, settlement_id="x" * 600),
    ]
    for r in bad:
        with pytest.raises(InvalidRecord):
            p.on_record(rec(r), state)
    with pytest.raises(Exception, match="magic|schema|decode|Avro|Confluent|framing"):
        p.on_record(Record("settlement.flex.v1", 0, 0, None, b"\x00garbage", NOW), state)
    assert state.data == {}


def test_chain_unreachable_and_unauthorised_key_are_outages(client, tester_chain):
    dead = AnchorRegistryClient(
        Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 1})), client.address
    )
    p, _ = processor(dead)
    state = MemoryState()
    feed(p, state, [synthetic_settlement(0)])
    before = dict(state.data)
    with pytest.raises(TransientError, match="anchoring FLEX"):
        tick(p, state, due_at(0))
    assert state.data == before  # still due: retried after the backoff

    def refuse() -> Anchorer:
        raise ConnectionError("connection refused")

    unreachable = AnchoringProcessor(SERDE, TOPICS, TIMING, refuse, Limits(), wall_clock=lambda: NOW)
    with pytest.raises(TransientError, match="chain not reachable"):
        unreachable.on_tick(due_at(0), 0, state)

    w3, _, stranger = tester_chain
    p, _ = processor(AnchorRegistryClient(w3, client.address, stranger, poll_s=0.01))
    with pytest.raises(TransientError, match="NotWriter"):
        tick(p, state, due_at(0))
    assert state.data == before


def test_closed_windows_are_purged_after_retention(client):
    p, _ = processor(client)
    state = MemoryState()
    feed(p, state, [synthetic_settlement(i) for i in range(3)])
    tick(p, state, due_at(0))
    assert [e.action for e in DueIndex(state).entries()] == ["purge"]
    tick(p, state, T0_MS + SLOT_MS + TIMING.retain_ms)
    assert state.data == {}


def test_tick_budget_spreads_windows_over_ticks(client):
    p, _ = processor(client)
    p.tick_budget_s = 0.0  # every tick anchors one window, the rest stay due
    state = MemoryState()
    feed(p, state, [synthetic_settlement(0, slot=s) for s in range(3)])
    counts = [len(decoded(tick(p, state, due_at(2)), "receipts")) for _ in range(4)]
    assert counts == [1, 1, 1, 0]


def test_rekey_sends_a_window_to_one_key():
    rekey = window_of(SERDE, TIMING)
    a, b = synthetic_settlement(0), synthetic_settlement(7, window_start=T0_MS + 60_000)
    m = synthetic_settlement(0, kind="MARKET")
    keys = [rekey(None, SERDE.encode("Settlement", r)) for r in (a, b, m)]
    assert keys == [[b"FLEX:2026-11-18T00:00Z/15m"]] * 2 + [[b"MARKET:2026-11-18T00:00Z/15m"]]


def _cost_per_record(open_windows: int, per_window: int) -> tuple[float, float]:
    """State calls and bytes per added record into a partition already holding ``open_windows`` windows of
    ``per_window``."""
    p = AnchoringProcessor(SERDE, TOPICS, TIMING, lambda: None, Limits(), wall_clock=lambda: NOW)  # type: ignore[arg-type]
    state = CountingState()
    for w in range(open_windows):
        for i in range(per_window):
            p.on_record(rec(synthetic_settlement(i, slot=w % 90, kind=("FLEX", "MARKET")[w // 90])), state)
    probe = [rec(synthetic_settlement(10_000 + i, slot=95)) for i in range(2000)]
    calls, moved = state.work()
    for r in probe:
        p.on_record(r, state)
    return (state.calls - calls) / len(probe), (state.bytes - moved) / len(probe)


def test_record_cost_does_not_grow_with_state():
    small = _cost_per_record(1, 10)
    large = _cost_per_record(180, 100)  # 18,000 records in 180 open windows
    print(f"anchoring on_record: state calls, bytes per record: {small} small state, {large} large")
    assert large[0] == small[0] and large[1] <= 1.05 * small[1], (small, large)
