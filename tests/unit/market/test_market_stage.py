"""The market stage as the runtime drives it, on MemoryState partitions: bytes in (orders keyed by session,
intervals re-keyed to their session, participants as a view), bytes out. The scripted day gives the
hand-worked outputs of the former broker e2e driver, whatever the number of partitions, and after a restart."""

from __future__ import annotations

import time
import zlib

from edream.runtime.contract import Emit, Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.market.config import MarketConfig
from streams.market.participants import ParticipantView
from streams.market.processor import MarketProcessor
from streams.market.stream import INTERVALS_TOPIC, ORDERS_TOPIC, MarketStage, interval_session_keys
from streams.validation.limits import Limits
from tools.sim.market_day import MarketDay, Q, check_outputs

SERDE = Serde()
NOW = int(time.time() * 1000)
DAY = MarketDay(NOW - NOW % Q - 6 * 3_600_000)


class DictView:
    def __init__(self, items: dict[bytes, bytes]):
        self.data = items

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def items(self):
        return list(self.data.items())


def registry() -> DictView:
    return DictView(
        {
            p.participant_id.encode(): SERDE.encode("MarketParticipant", p.to_avro())
            for p in DAY.participants()
        }
    )


def make_stage(config: MarketConfig = DAY.config) -> MarketStage:
    view = ParticipantView(registry(), SERDE.decode)
    return MarketStage(MarketProcessor(config, view, limits=Limits()), SERDE, {})


def inputs() -> list[Record]:
    """The day's records in arrival order, as the runtime hands them over (intervals already re-keyed)."""
    recs = []
    for o, at in DAY.orders():
        recs.append(
            Record(ORDERS_TOPIC, 0, 0, o.session_id.encode(), SERDE.encode("MarketOrder", o.to_avro()), at)
        )
    for rec, at in DAY.intervals():
        value = SERDE.encode("IntervalEnergy", rec)
        (key,) = interval_session_keys(DAY.config, SERDE, None, value)
        recs.append(Record(INTERVALS_TOPIC, 0, 0, key, value, at))
    return sorted(recs, key=lambda r: r.timestamp_ms)


def run(
    records: list[Record], states: list[MemoryState], ticks: list[int] = (), live: bool = True
) -> list[Emit]:
    """Route records to partitions by key (as Kafka would), each tick to every partition. ``live``: the wall
    clock ticks every partition at each record's arrival time first (as the runtime's clock does in real time)."""
    stage, out = make_stage(), []
    for r in records:
        for p, s in enumerate(states if live else ()):
            out += stage.on_tick(r.timestamp_ms, p, s)
        out += stage.on_record(r, states[zlib.crc32(r.key) % len(states)])
    for t in ticks:
        for p, s in enumerate(states):
            out += stage.on_tick(t, p, s)
    return out


def by_kind(emits: list[Emit]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in emits:
        name, rec = SERDE.decode(e.value)
        out.setdefault(name, []).append(rec)
    return out


def test_the_scripted_day_gives_the_hand_worked_outputs():
    out = run(inputs(), [MemoryState()])
    check_outputs(DAY, by_kind(out))
    assert {e.topic for e in out} == {
        "market.orders.accepted.v1",
        "platform.rejections.v1",
        "market.clearing.v1",
        "market.trades.v1",
        "settlement.market.v1",
    }


def test_partitions_and_restarts_do_not_change_the_outputs():
    one = {(e.topic, e.key, e.value) for e in run(inputs(), [MemoryState()])}
    states = [MemoryState() for _ in range(4)]
    records = inputs()
    half = len(records) // 2
    four = run(records[:half], states) + run(records[half:], states)  # a new stage over the kept state
    assert {(e.topic, e.key, e.value) for e in four} == one
    assert sum(1 for s in states if s.data) > 1, "sessions spread over partitions"


def test_replaying_the_inputs_repeats_outputs_and_changes_nothing():
    states = [MemoryState()]
    first = {(e.topic, e.key, e.value) for e in run(inputs(), states)}
    again = {(e.topic, e.key, e.value) for e in run(inputs(), states)}
    assert again <= first  # at-least-once replay: the same ids and values, or nothing


def test_ticks_close_the_gates_when_no_order_comes():
    records = [r for r in inputs() if r.topic == ORDERS_TOPIC and r.timestamp_ms < DAY.slot0 - Q]
    out = by_kind(run(records, [MemoryState()], ticks=[DAY.slot0 - Q - 1, DAY.slot0 - Q], live=False))
    assert [r["slot_start"] for r in out["ClearingResult"]] == [DAY.slot0]
