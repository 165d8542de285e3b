"""The baselines stage on the runtime contract (MemoryState): same records as the StatefulLoop stage per
prosumer (which read whole orders; the stage reads each order's allocations per prosumer), validation before
state, bounded per-prosumer state."""

from __future__ import annotations

import copy
import math

import pytest
from baseline_stream_reference import ORDERS_TOPIC, BaselineStream

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.analytics.baseline_processor import (
    ALLOCATIONS_TOPIC,
    BASELINE_TOPIC,
    INTERVAL_TOPIC,
    BaselineProcessor,
    interval_prosumer_key,
)
from streams.analytics.baselines import DAY_MS, SLOT_MS
from streams.flex.allocations import allocation_outs
from streams.flex.orders import FlexOrder
from streams.validation.fields import InvalidRecord
from streams.validation.limits import Limits
from tools.sim.interval_feed import flex_order, interval, intervals, load_kw

SERDE = Serde()
START = 1_793_577_600_000  # 2026-11-02T00:00Z, a Monday
DAYS = 16
NOW = START + (DAYS + 1) * DAY_MS  # the wall clock of the tests: a day after the feed
PROSUMERS = ["p1", "p2", "p3"]

Msg = tuple[str, str, dict]  # (topic, key, record)


def feed() -> list[Msg]:
    """16 days of 3 prosumers, slot by slot, with a second device, corrections, a gap, an empty interval and
    orders (one cancelled, one for two prosumers) arriving mid-feed."""
    out: list[Msg] = []
    for rec in intervals(PROSUMERS, START, DAYS * 96):
        start, p = rec["interval_start"], rec["prosumer_id"]
        day, slot = divmod(start - START, DAY_MS)
        slot //= SLOT_MS
        if p == "p2" and day == 6 and 20 <= slot < 70:
            continue  # half a day missing: day 6 is not a usable look-back day of p2
        if p == "p3" and day == 9 and slot == 30:
            rec = interval("p3", start, 9.0, completeness=0.0)  # an empty interval still moves event time
        out.append((INTERVAL_TOPIC, p, rec))
        if p == "p1" and day < 8 and 40 <= slot < 60:
            out.append((INTERVAL_TOPIC, p, interval(p, start, -0.7, device_id="pv-p1")))  # second device
        if p == "p2" and day == 9 and slot == 10:
            old = START + 8 * DAY_MS + 50 * SLOT_MS
            out.append((INTERVAL_TOPIC, p, interval(p, old, 3.3, version=2)))  # late correction of day 8
            out.append((INTERVAL_TOPIC, p, interval(p, old, 0.1, version=1)))  # an older version: ignored
        if p == "p3" and day == 5 and slot == 0:
            out.append((ORDERS_TOPIC, "o1", flex_order("o1", [("p1", START + 10 * DAY_MS + 70 * SLOT_MS)])))
            both = [("p2", START + 11 * DAY_MS + 72 * SLOT_MS), ("p3", START + 12 * DAY_MS + 72 * SLOT_MS)]
            out.append((ORDERS_TOPIC, "o2", flex_order("o2", both)))
            cancelled = [("p1", START + 12 * DAY_MS + 72 * SLOT_MS)]
            out.append((ORDERS_TOPIC, "o3", flex_order("o3", cancelled, status="CANCELLED")))
    return out


def encode(topic: str, rec: dict) -> bytes:
    return SERDE.encode("IntervalEnergy" if topic == INTERVAL_TOPIC else "FlexOrder", rec, topic)


def allocations(order: dict) -> list[tuple[bytes, bytes]]:
    """(key, value) of the FlexAllocation records the area desk makes of a new ``order`` (Avro dict)."""
    return [
        (o.key.encode(), SERDE.encode(o.schema, o.record, ALLOCATIONS_TOPIC))
        for o in allocation_outs(FlexOrder.from_avro(order))
    ]


class Stage:
    """The processor as the runtime drives it: intervals re-keyed by prosumer, an order as its allocations."""

    def __init__(self, now_ms=lambda: NOW, state: MemoryState | None = None):
        self.proc = BaselineProcessor(SERDE, now_ms=now_ms)
        self.rekey = interval_prosumer_key
        self.state = state or MemoryState()
        self.offset = 0

    def records(self, topic: str, key: str, value: bytes) -> list[Record]:
        self.offset += 1
        if topic == INTERVAL_TOPIC:
            return [Record(topic, 0, self.offset, k, value, 0) for k in self.rekey(key.encode(), value)]
        return [Record(topic, 0, self.offset, key.encode(), value, 0)]

    def send(self, topic: str, key: str, value: bytes) -> list[tuple[bytes, bytes]]:
        out = []
        for r in self.records(topic, key, value):
            for e in self.proc.on_record(r, self.state):
                assert e.topic == BASELINE_TOPIC
                out.append((e.key, e.value))
        return out

    def run(self, msgs: list[Msg]) -> list[tuple[bytes, bytes]]:
        out = []
        for t, k, rec in msgs:
            if t == ORDERS_TOPIC:
                for key, value in allocations(rec):
                    out += self.send(ALLOCATIONS_TOPIC, key.decode(), value)
            else:
                out += self.send(t, k, encode(t, rec))
        return out


def today(msgs: list[Msg], prosumer: str) -> list[tuple[bytes, bytes]]:
    """What the StatefulLoop stage emits for ``prosumer`` when it reads that prosumer's intervals (and all
    orders, at the same positions)."""
    bs = BaselineStream(SERDE)
    out = []
    for t, k, rec in msgs:
        if t == ORDERS_TOPIC or rec["prosumer_id"] == prosumer:
            out += [(key, v) for _, key, v in bs.handle(t, k.encode(), encode(t, rec), 0)]
    return out


def decoded(out: list[tuple[bytes, bytes]]) -> list[dict]:
    return [SERDE.decode(v, BASELINE_TOPIC)[1] for _, v in out]


def test_same_records_as_the_statefulloop_stage_for_every_prosumer():
    msgs = feed()
    got = Stage().run(msgs)
    for p in PROSUMERS:
        mine = [o for o in got if o[0] == p.encode()]
        assert mine == today(msgs, p)  # same ids, versions, values, computed_at: byte for byte
        recs = decoded(mine)
        assert {r["version"] for r in recs} == {1, 2}
        assert all(r["isp_start"] >= r["computed_at"] for r in recs)  # issued ahead of the slot
    ids = [r["event_id"] for r in decoded(got)]
    assert len(ids) == len(set(ids)) > 3 * 96 * 4


def test_event_days_leave_the_look_back_and_cancelled_orders_do_not():
    recs = decoded(Stage().run(feed()))

    def sources(p: str, day: int, version: int) -> list[str]:
        starts = {START + day * DAY_MS + s * SLOT_MS for s in range(96)}
        hits = [
            r for r in recs if r["prosumer_id"] == p and r["version"] == version and r["isp_start"] in starts
        ]
        assert hits, (p, day, version)
        return hits[0]["source_days"]

    # day 0 is Monday 2026-11-02. o1: p1's Thursday 11-12 (day 10) leaves the look-back of Monday 11-16
    assert "2026-11-12" not in sources("p1", 14, 1) and {"2026-11-13", "2026-11-11"} <= set(
        sources("p1", 14, 1)
    )
    # o2: p2's Friday 11-13 (day 11) and p3's Saturday 11-14 (day 12) are event days
    assert "2026-11-13" not in sources("p2", 15, 2) and "2026-11-12" in sources("p2", 15, 2)
    assert "2026-11-14" not in sources("p3", 13, 2) and "2026-11-08" in sources("p3", 13, 2)
    # o3 (p1's Saturday 11-14) was cancelled: that day stays in p1's weekend look-back
    assert "2026-11-14" in sources("p1", 13, 2)


def test_allocations_mark_their_prosumers_event_days_only():
    two = flex_order("o9", [("p2", START), ("p1", START + DAY_MS), ("p2", START + 2 * DAY_MS)])
    stage = Stage()
    stage.run([(ORDERS_TOPIC, "o9", two)])
    start_day = START // DAY_MS
    meta = {k: v for k, v in stage.state.data.items()}
    assert set(meta) == {"b:p1", "b:p2"}
    assert b'"events":[%d]' % (start_day + 1) in meta["b:p1"]
    assert b'"events":[%d,%d]' % (start_day, start_day + 2) in meta["b:p2"]
    # a cancelled order's allocations and a release (no slots) mark nothing
    before = dict(stage.state.data)
    stage.run([(ORDERS_TOPIC, "o8", flex_order("o8", [("p1", START)], status="CANCELLED"))])
    release = next(iter(allocations(flex_order("o7", [("p1", START)]))))[1]
    stage.proc.on_record(Record(ALLOCATIONS_TOPIC, 0, 0, b"p1", release, 0), stage.state)
    assert stage.state.data != before  # o7 marked its day
    _, rec = SERDE.decode(release, ALLOCATIONS_TOPIC)
    empty = SERDE.encode("FlexAllocation", rec | {"slots": [], "revision": 2}, ALLOCATIONS_TOPIC)
    after = dict(stage.state.data)
    stage.proc.on_record(Record(ALLOCATIONS_TOPIC, 0, 0, b"p1", empty, 0), stage.state)
    assert stage.state.data == after


def test_a_prosumer_lagging_behind_the_others_still_gets_its_baselines():
    """The StatefulLoop stage moved all prosumers on one watermark: records of a prosumer read after the
    others' (a lagging partition) were all late and got no baseline. Per-prosumer event time does not care."""
    msgs = [m for m in feed() if m[0] == INTERVAL_TOPIC]
    lagging = [m for m in msgs if m[1] != "p2"] + [m for m in msgs if m[1] == "p2"]
    in_sync = Stage().run(msgs)
    late = Stage().run(lagging)
    assert [o for o in late if o[0] == b"p2"] == [o for o in in_sync if o[0] == b"p2"] != []
    bs = BaselineStream(SERDE)
    old = [o for t, k, rec in lagging for o in bs.handle(t, k.encode(), encode(t, rec), 0)]
    assert not any(k == b"p2" for _, k, _ in old)


def test_replay_after_a_crash_repeats_the_same_records():
    msgs = feed()
    cut = len(msgs) // 2
    stage = Stage()
    stage.run(msgs[:cut])
    committed = copy.deepcopy(stage.state)
    first = stage.run(msgs[cut:])
    # the worker died after producing: the records after the last commit are replayed on the committed state
    again = Stage(state=committed).run(msgs[cut:])
    assert again == first and first
    # records already applied are replayed as well (at-least-once): they are late, nothing new is emitted
    assert stage.run(msgs[cut - 200 : cut]) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"avg_kw": math.nan}, "avg_kw"),
        ({"avg_kw": 1e9}, "avg_kw"),
        ({"interval_end": NOW + DAY_MS}, "interval_end"),  # ahead of the wall clock
        ({"interval_end": START - 40 * DAY_MS}, "interval_end"),  # older than max_past
        ({"interval_start": START + 7 * 60_000}, "interval_start"),  # off the slot grid
        ({"prosumer_id": "p 1"}, "prosumer_id"),
        ({"device_id": "x" * 500}, "device_id"),
        ({"completeness": 1.5}, "completeness"),
    ],
)
def test_invalid_intervals_raise_and_change_nothing(change, field):
    stage = Stage()
    stage.run([m for m in feed() if m[0] == INTERVAL_TOPIC][:600])
    before = dict(stage.state.data)
    rec = interval("p1", START + 200 * SLOT_MS, 1.0) | change
    with pytest.raises(InvalidRecord, match=field):
        stage.send(INTERVAL_TOPIC, "p1", encode(INTERVAL_TOPIC, rec))
    assert stage.state.data == before


def test_wrong_key_schema_or_bytes_raise():
    stage = Stage()
    good = encode(INTERVAL_TOPIC, interval("p1", START, 1.0))
    assert stage.rekey(b"p1", good) == [b"p1"]  # routed by the message key, the value is not decoded
    with pytest.raises(ValueError, match="not the interval's prosumer_id"):
        stage.proc.on_record(Record(INTERVAL_TOPIC, 0, 0, b"p2", good, 0), stage.state)
    with pytest.raises(DecodeError):
        stage.send(INTERVAL_TOPIC, "p1", b"\x00garbage")
    with pytest.raises(DecodeError):
        stage.proc.on_record(Record(INTERVAL_TOPIC, 0, 0, b"\x00unreadable", b"\x00garbage", 0), stage.state)
    bad_id = encode(INTERVAL_TOPIC, interval("p1", START, 1.0) | {"prosumer_id": "p 1"})
    with pytest.raises(InvalidRecord, match="prosumer_id"):
        stage.send(INTERVAL_TOPIC, "p1", bad_id)
    for bad_key in (None, b"", b"p 1"):
        with pytest.raises(InvalidRecord, match="message key"):
            stage.rekey(bad_key, good)
    with pytest.raises(ValueError, match="expected IntervalEnergy"):
        stage.send(INTERVAL_TOPIC, "p1", encode(ORDERS_TOPIC, flex_order("o", [("p1", START)])))
    with pytest.raises(ValueError, match="does not read"):
        stage.proc.on_record(Record("other", 0, 0, b"p1", good, 0), stage.state)
    assert stage.state.data == {}


def test_invalid_allocations_raise_and_change_nothing():
    stage = Stage()
    [(_, far)] = allocations(flex_order("o", [("p1", NOW + 30 * DAY_MS)]))
    with pytest.raises(InvalidRecord, match="beyond|ahead"):
        stage.send(ALLOCATIONS_TOPIC, "p1", far)
    [(_, good)] = allocations(flex_order("o", [("p1", START)]))
    _, rec = SERDE.decode(good, ALLOCATIONS_TOPIC)
    bad_kw = SERDE.encode(
        "FlexAllocation", rec | {"slots": [rec["slots"][0] | {"kw": math.nan}]}, ALLOCATIONS_TOPIC
    )
    with pytest.raises(InvalidRecord, match=r"slots\[0\].kw"):
        stage.send(ALLOCATIONS_TOPIC, "p1", bad_kw)
    bad_id = SERDE.encode("FlexAllocation", rec | {"prosumer_id": "p 1"}, ALLOCATIONS_TOPIC)
    with pytest.raises(InvalidRecord, match="prosumer_id"):
        stage.send(ALLOCATIONS_TOPIC, "p 1", bad_id)
    with pytest.raises(ValueError, match="not the allocation's prosumer_id"):
        stage.send(ALLOCATIONS_TOPIC, "p7", good)
    with pytest.raises(ValueError, match="expected FlexAllocation"):
        stage.send(ALLOCATIONS_TOPIC, "p1", encode(INTERVAL_TOPIC, interval("p1", START, 1.0)))
    assert stage.state.data == {}


def test_state_is_per_prosumer_and_bounded_by_the_look_back():
    clock = {"now": START}
    stage = Stage(now_ms=lambda: clock["now"])
    stage.proc.limits = Limits(max_past_ms=200 * DAY_MS)
    days = 70
    for rec in intervals(["p1"], START, days * 96):
        clock["now"] = rec["interval_end"]
        stage.send(INTERVAL_TOPIC, "p1", encode(INTERVAL_TOPIC, rec))
    keys = set(stage.state.data)
    kept = stage.proc.cfg.max_lookback_days + 3
    assert len([k for k in keys if k.startswith("b:p1:kw:")]) <= kept
    assert f"b:p1:kw:{START // DAY_MS}" not in keys  # the first days were forgotten
    assert {k.split(":")[0] for k in keys} == {"b"}


class CountingState(MemoryState):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.reads.append(key)
        return super().get(key)


def test_a_record_reads_only_its_prosumer_keys():
    state = CountingState()
    stage = Stage(state=state)
    stage.run(feed())
    state.reads.clear()
    start = START + DAYS * DAY_MS
    emitted = stage.send(
        INTERVAL_TOPIC, "p3", encode(INTERVAL_TOPIC, interval("p3", start, load_kw(2, start)))
    )
    assert emitted  # a new day: the 96 day-ahead records and one adjusted slot
    assert state.reads and all(k == "b:p3" or k.startswith("b:p3:") for k in state.reads)
    assert len(state.reads) <= 2 + 2 * (stage.proc.cfg.max_lookback_days + 2)
