"""The forecasts stage processor on MemoryState: same records as the hosted ForecastStream, per-prosumer state.

The reference is today's :class:`ForecastStream` (whole-state pickle): for one prosumer the processor's outputs
are byte-identical to it; with several prosumers interleaved each prosumer's outputs are those ForecastStream
gives for that prosumer's intervals alone (the processor keeps event time per prosumer, see its docstring).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

import pytest

from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import DecodeError, Serde
from streams.analytics.forecast_processor import ForecastProcessor, ForecastTopics, state_key
from streams.analytics.forecast_stream import ForecastStream
from streams.validation.fields import InvalidRecord
from streams.validation.limits import Limits

SERDE = Serde()
STEP = 900_000
DAY_MS = 86_400_000
DAY0 = 1_795_392_000_000  # 2026-11-23T00:00Z (a Monday)
NOW_MS = DAY0 + 20 * DAY_MS  # the wall clock of these tests: every interval below is within 31 days of it
TOPIC = "meter.intervals.15m.v1"
TOPICS = ForecastTopics(TOPIC, "forecast.profiles.v1", "forecast.accuracy.v1")


def interval(
    prosumer: str, start: int, import_wh: float, export_wh: float = 0.0, version: int = 1, **kw
) -> bytes:
    rec = {
        "event_id": f"dev-{prosumer}/{start}/{version}",
        "device_id": f"dev-{prosumer}",
        "prosumer_id": prosumer,
        "interval_start": start,
        "interval_end": start + STEP,
        "import_wh": import_wh,
        "export_wh": export_wh,
        "avg_kw": import_wh * 4 / 1000,
        "max_kw": import_wh * 4 / 1000,
        "samples": 180,
        "expected_samples": 180,
        "completeness": 1.0,
        "estimated": False,
        "method": "POWER_INTEGRATION",
        "version": version,
        "computed_at": start + STEP,
        **kw,
    }
    return SERDE.encode("IntervalEnergy", rec, TOPIC)


def prosumer_day(prosumer: str, days: int, seed: int) -> list[bytes]:
    """A load with a daily shape and PV export, a five-hour outage and a late correction of one interval."""
    rng = random.Random(seed)
    out = []
    for i in range(days * 96):
        if 500 <= i < 520:
            continue
        hour = (i % 96) / 4
        imp = max(0.0, 220 + 120 * math.sin(hour / 24 * 2 * math.pi) + rng.gauss(0, 20))
        exp = max(0.0, 300 * math.sin((hour - 6) / 12 * math.pi)) if 6 <= hour <= 18 else 0.0
        out.append(interval(prosumer, DAY0 + i * STEP, imp, exp))
        if i == 700:
            out.append(interval(prosumer, DAY0 + i * STEP, imp + 5, exp, version=2))
    return out


def processor() -> ForecastProcessor:
    return ForecastProcessor(SERDE, TOPICS, Limits(), clock=lambda: NOW_MS / 1000)


def run(proc: ForecastProcessor, state, msgs: list[bytes]) -> list[tuple]:
    out = []
    for i, m in enumerate(msgs):
        key = SERDE.decode(m, TOPIC)[1]["prosumer_id"].encode()
        out += [tuple(e) for e in proc.on_record(Record(TOPIC, 0, i, key, m, 0), state)]
    return out


def hosted(msgs: list[bytes]) -> list[tuple]:
    """Today's outputs: the hosted ForecastStream (global watermark, pickle snapshot)."""
    fs = ForecastStream(SERDE, forecast_topic=TOPICS.forecasts, accuracy_topic=TOPICS.accuracy)
    return [tuple(e) for m in msgs for e in fs.handle(TOPIC, None, m, 0)]


def test_one_prosumer_gives_byte_identical_records_to_the_hosted_stream():
    msgs = prosumer_day("p1", 12, 1)
    state = MemoryState()
    got = run(processor(), state, msgs)
    want = hosted(msgs)
    assert len(got) > 5000 and got == want
    names = defaultdict(int)
    for topic, _, v in got:
        names[SERDE.decode(v, topic)[0]] += 1
    assert set(names) == {"Forecast", "ForecastAccuracy"}
    assert list(state.data) == [state_key("p1")]


def test_first_interval_issues_every_horizon_and_a_correction_issues_nothing():
    state, proc = MemoryState(), processor()
    first = [SERDE.decode(v, t)[1] for t, _, v in run(proc, state, [interval("p1", DAY0, 250.0)])]
    assert sorted({r["prediction_granularity"] for r in first}) == ["DAYAHEAD", "INTRA_DAY", "ONE_HOUR_AHEAD"]
    assert {r["issued_at"] for r in first} == {DAY0 + STEP}
    before = dict(state.data)
    assert run(proc, state, [interval("p1", DAY0, 260.0, version=2)]) == []
    assert state.data == before  # nothing learnt, nothing rewritten
    nxt = [SERDE.decode(v, t)[1] for t, _, v in run(proc, state, [interval("p1", DAY0 + STEP, 250.0)])]
    assert sorted({r["prediction_granularity"] for r in nxt}) == ["INTRA_DAY", "ONE_HOUR_AHEAD"]


class Touched(MemoryState):
    """Records which keys each record reads and writes."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    def get(self, key: str) -> bytes | None:
        self.keys.add(key)
        return super().get(key)

    def set(self, key: str, value: bytes) -> None:
        self.keys.add(key)
        super().set(key, value)


def test_interleaved_prosumers_each_get_the_hosted_records_of_their_own_intervals():
    per = {p: prosumer_day(p, 9, seed) for seed, p in enumerate(("p1", "p2", "p3"))}
    merged = [m for group in zip(*per.values(), strict=False) for m in group]
    state, proc = Touched(), processor()
    got: dict[str, list[tuple]] = defaultdict(list)
    for i, m in enumerate(merged):
        pid = SERDE.decode(m, TOPIC)[1]["prosumer_id"]
        state.keys.clear()
        got[pid] += [tuple(e) for e in proc.on_record(Record(TOPIC, 0, i, pid.encode(), m, 0), state)]
        assert state.keys == {state_key(pid)}  # a record touches its prosumer's state only
    for pid, msgs in per.items():
        assert got[pid] == hosted(msgs), pid
        assert all(k == pid.encode() for _, k, _ in got[pid])
    assert sorted(state.data) == [state_key(p) for p in ("p1", "p2", "p3")]


def test_restart_from_stored_state_and_replay_give_identical_records():
    msgs = prosumer_day("p1", 10, 7) + prosumer_day("p2", 10, 8)
    whole = run(processor(), MemoryState(), msgs)
    state = MemoryState()
    head = run(processor(), state, msgs[:1300])
    committed = dict(state.data)
    tail = run(processor(), state, msgs[1300:])  # a new processor instance: nothing kept in memory
    assert head + tail == whole
    replay = MemoryState()
    replay.data = committed  # a crash before the next commit: the same records again from the committed state
    assert run(processor(), replay, msgs[1300:]) == tail


@pytest.mark.parametrize(
    ("value", "key", "error", "reason"),
    [
        (interval("p1", DAY0 + STEP, math.nan), b"p1", InvalidRecord, "import_wh"),
        (interval("p1", DAY0 + STEP, -1.0), b"p1", InvalidRecord, "import_wh"),
        (interval("p1", DAY0 + STEP, 1e12), b"p1", InvalidRecord, "import_wh"),
        (
            interval("p1", DAY0 + STEP + 60_000, 1.0, interval_end=DAY0 + 2 * STEP),
            b"p1",
            InvalidRecord,
            "grid",
        ),
        (interval("p1", DAY0 + STEP, 1.0, interval_end=DAY0 + 3 * STEP), b"p1", InvalidRecord, "long"),
        (interval("p1", NOW_MS + DAY_MS, 1.0), b"p1", InvalidRecord, "ahead of now"),
        (interval("p1", DAY0 - 40 * DAY_MS, 1.0), b"p1", InvalidRecord, "before now"),
        (interval("p 1", DAY0 + STEP, 1.0), b"p 1", InvalidRecord, "prosumer_id"),
        (interval("p1", DAY0 + STEP, 1.0), b"dev-p1", ValueError, "not the record's prosumer_id"),
        (interval("p1", DAY0 + STEP, 1.0), None, ValueError, "not the record's prosumer_id"),
        (b"\x00garbage", b"p1", DecodeError, None),
        (b"", b"p1", DecodeError, None),
    ],
)
def test_invalid_records_raise_before_any_state_or_watermark_moves(value, key, error, reason):
    state, proc = MemoryState(), processor()
    run(proc, state, [interval("p1", DAY0, 100.0)])
    before = dict(state.data)
    with pytest.raises(error, match=reason):
        proc.on_record(Record(TOPIC, 0, 1, key, value, 0), state)
    assert state.data == before
    # the next valid interval is processed as if the bad one never came (its watermark did not move)
    assert run(proc, state, [interval("p1", DAY0 + STEP, 100.0)])


def test_a_record_of_another_contract_is_refused():
    state, proc = MemoryState(), processor()
    forecast = next(v for t, _, v in run(proc, state, [interval("p1", DAY0, 100.0)]) if t == TOPICS.forecasts)
    with pytest.raises(ValueError, match="carries IntervalEnergy records, got Forecast"):
        proc.on_record(Record(TOPIC, 0, 1, b"p1", forecast, 0), state)
