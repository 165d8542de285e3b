"""The terms stage's processor with MemoryState on a real in-process EVM (eth-tester): registered once per version in
batches on ticks, receipts again for versions already on-chain, superseded enrolments never registered (replay
after a crash), refusals dead-lettered, outages as TransientError."""

from __future__ import annotations

import pytest
from counting_state import CountingState
from web3 import Web3

from edream.runtime.contract import Record, TransientError
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.anchoring.chain import deploy
from streams.anchoring.terms import TermsError, contract_key
from streams.anchoring.terms_chain import TermsRegistryClient
from streams.anchoring.terms_processor import TermsProcessor
from streams.anchoring.terms_registrar import Outcome, TermsConfig, TermsRegistrar
from streams.flex.enrolment import ContractTerms, CurtailableLoad, ProsumerRecord, enrolment_event
from streams.validation.limits import Limits

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
NOW = T0 + 86_400_000
TOPIC = "flex.enrolments.v1"
SERDE = Serde()


class DictView:
    def __init__(self):
        self.data: dict[bytes, bytes] = {}

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def items(self):
        return list(self.data.items())


@pytest.fixture
def client(tester_chain):
    w3, owner, _ = tester_chain
    address, _ = deploy(w3, owner, "ContractTermsRegistry")
    return TermsRegistryClient(w3, address, owner, poll_s=0.01)


def prosumer(pid: str, multiplier: float = 1.0, agg: str = "agg") -> ProsumerRecord:
    terms = ContractTerms(aggregator_id=agg, multiplier=multiplier, valid_from=T0, valid_until=T0 + 10**10)
    return ProsumerRecord(pid, "area-1", terms, (CurtailableLoad("hp", 2.0),))


def make(client, view=None, batch: int = 50) -> tuple[TermsProcessor, TermsRegistrar]:
    registrar = TermsRegistrar(client, TermsConfig(confirmations=1))
    p = TermsProcessor(SERDE, "receipts", "dlq", lambda: registrar, Limits(), view, batch, lambda: NOW)
    return p, registrar


class Feeder:
    """Produces enrolments like the topic: offsets, and the registry view following the topic."""

    def __init__(self, view: DictView | None = None):
        self.offset, self.view = 0, view

    def __call__(self, p: TermsProcessor, state: MemoryState, events: list[dict]) -> None:
        for ev in events:
            value = SERDE.encode("FlexEnrolment", ev, TOPIC)
            if self.view is not None:
                self.view.data[ev["prosumer_id"].encode()] = value
            p.on_record(Record(TOPIC, 0, self.offset, ev["prosumer_id"].encode(), value, NOW), state)
            self.offset += 1


def receipts(emits) -> list[dict]:
    return [SERDE.decode(e.value)[1] for e in emits if e.topic == "receipts"]


def test_registered_once_per_version_in_batches(client):
    p, registrar = make(client)
    state, feed = MemoryState(), Feeder()
    pids = ["p1", "p2", "p3"]
    feed(p, state, [enrolment_event(prosumer(x), T0) for x in pids])
    first = receipts(p.on_tick(NOW, 0, state))
    assert sorted((r["prosumer_id"], r["version"]) for r in first) == [(x, 1) for x in pids]
    assert len(registrar.sent_txs) == 3 and p.on_tick(NOW, 0, state) == []  # the queue is empty

    # re-delivery with a newer updated_at (the demo re-publishes its registry): same receipts, no transaction
    feed(p, state, [enrolment_event(prosumer(x), T0 + 60_000) for x in pids])
    again = receipts(p.on_tick(NOW, 0, state))
    assert {r["event_id"] for r in again} == {r["event_id"] for r in first} and len(registrar.sent_txs) == 3

    amended = enrolment_event(prosumer("p1", multiplier=1.5), T0 + 120_000)
    feed(p, state, [enrolment_event(prosumer("p1"), T0 + 90_000), amended])  # the older one is replaced
    (v2,) = receipts(p.on_tick(NOW, 0, state))
    assert (v2["version"], v2["terms_hash"][2:]) == (2, amended["terms_hash_keccak"])
    assert len(registrar.sent_txs) == 4 and client.latest_version(contract_key("agg", "p1")) == 2
    assert state.data == {}  # nothing left behind


def test_batch_size_bounds_one_tick(client):
    p, registrar = make(client, batch=2)
    state = MemoryState()
    Feeder()(p, state, [enrolment_event(prosumer(x), T0) for x in ("a", "b", "c")])
    assert [len(receipts(p.on_tick(NOW, 0, state))) for _ in range(3)] == [2, 1, 0]


def test_replay_after_crash_never_registers_a_superseded_version(client):
    view = DictView()
    p, registrar = make(client, view)
    feed = Feeder(view)
    original, amended = enrolment_event(prosumer("p1"), T0), enrolment_event(prosumer("p1", 1.5), T0 + 60_000)
    checkpoint = MemoryState()  # the last committed state: before either record
    state = MemoryState()
    feed(p, state, [original])
    p.on_tick(NOW, 0, state)
    feed(p, state, [amended])
    p.on_tick(NOW, 0, state)
    assert len(registrar.sent_txs) == 2  # v1, v2 ... then the worker dies before its checkpoint

    replay, registrar2 = make(client, view)  # the view was read whole at start: it holds the amendment
    feed.offset = 0
    for ev in (original, amended):
        value = SERDE.encode("FlexEnrolment", ev, TOPIC)
        replay.on_record(Record(TOPIC, 0, feed.offset, b"p1", value, NOW), checkpoint)
        feed.offset += 1
        out = receipts(replay.on_tick(NOW, 0, checkpoint))
    assert registrar2.sent_txs == [] and client.latest_version(contract_key("agg", "p1")) == 2
    assert [(r["version"], r["terms_hash"][2:]) for r in out] == [(2, amended["terms_hash_keccak"])]


def test_bad_enrolments_are_refused_before_any_state(client):
    p, _ = make(client)
    state = MemoryState()
    good = enrolment_event(prosumer("p1"), T0)
    cases = [
        (DecodeError, b"\x00not avro"),
        (TermsError, SERDE.encode("FlexEnrolment", {**good, "terms_hash_keccak": "00" * 32}, TOPIC)),
        (TermsError, SERDE.encode("FlexEnrolment", {**good, "updated_at": NOW + 86_400_000}, TOPIC)),
    ]
    for exc, value in cases:
        with pytest.raises(exc):
            p.on_record(Record(TOPIC, 0, 0, b"p1", value, NOW), state)
    assert state.data == {}


def test_outages_and_unauthorised_key_keep_the_queue(client, tester_chain):
    dead = TermsRegistryClient(
        Web3(Web3.HTTPProvider("http://127.0.0.1:9", request_kwargs={"timeout": 1})),
        client.address,
        client.account,
    )
    p, _ = make(dead)
    state = MemoryState()
    Feeder()(p, state, [enrolment_event(prosumer("p1"), T0)])
    before = dict(state.data)
    with pytest.raises(TransientError, match="registering 1 contract terms"):
        p.on_tick(NOW, 0, state)
    w3, _, stranger = tester_chain
    p, _ = make(TermsRegistryClient(w3, client.address, stranger, poll_s=0.01))
    with pytest.raises(TransientError, match="NotWriter"):
        p.on_tick(NOW, 0, state)
    assert state.data == before


def test_contract_refusal_is_dead_lettered(client):
    class Refusing:
        def register_all(self, wanted):
            return Outcome(refused=[(v, "contract refused registration: ProsumerMismatch") for v in wanted])

    p = TermsProcessor(SERDE, "receipts", "dlq", Refusing, Limits(), None, 50, lambda: NOW)
    state = MemoryState()
    Feeder()(p, state, [enrolment_event(prosumer("p1"), T0)])
    (letter,) = p.on_tick(NOW, 0, state)
    rec = SERDE.decode(letter.value)[1]
    assert (letter.topic, rec["error_type"], rec["stage"], rec["source_topic"]) == (
        "dlq",
        "ContractRefused",
        "stage:terms",
        TOPIC,
    )
    assert "ProsumerMismatch" in rec["error"] and state.data == {}


def _cost_per_record(pending: int) -> tuple[float, float]:
    """State calls and bytes per enrolment into a partition already holding ``pending`` pending prosumers."""
    p = TermsProcessor(SERDE, "receipts", "dlq", lambda: None, Limits(), None, 50, lambda: NOW)  # type: ignore[arg-type]
    state = CountingState()
    value = SERDE.encode("FlexEnrolment", enrolment_event(prosumer("seed"), T0), TOPIC)
    p.on_record(Record(TOPIC, 0, 0, b"seed", value, NOW), state)
    held = state.get("p|seed") or b""
    for i in range(pending):  # the same pending record under many prosumer ids: only the queue size matters
        state.set(f"p|x{i}", held)
        state.set(f"q|{i + 1}", f"x{i}".encode())
    state.set("q|tail", str(pending + 1).encode())
    probe = [
        Record(
            TOPIC,
            0,
            i,
            b"k",
            SERDE.encode("FlexEnrolment", enrolment_event(prosumer(f"n{i}"), T0), TOPIC),
            NOW,
        )
        for i in range(300)
    ]
    calls, moved = state.work()
    for r in probe:
        p.on_record(r, state)
    return (state.calls - calls) / len(probe), (state.bytes - moved) / len(probe)


def test_record_cost_does_not_grow_with_pending():
    small, large = _cost_per_record(10), _cost_per_record(20_000)
    print(f"terms on_record: state calls, bytes per enrolment: {small} with 10 pending, {large} with 20,000")
    assert large[0] == small[0] and large[1] <= 1.05 * small[1], (small, large)
