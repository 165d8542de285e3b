"""The interval stage's processor over partition key/value state (``MemoryState``): the same records as the
in-memory IntervalWorker on the same readings, windows of silent meters closed by ticks, poison readings leaving the
state untouched, state kept per meter (no key grows with the number of meters) and stored without pickle."""

from __future__ import annotations

import random

import orjson
import pytest
from interval_worker_reference import IntervalWorker

from edream.measurements import power_reading
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.analytics.interval_processor import IntervalProcessor
from streams.analytics.interval_rules import IntervalConfig
from streams.analytics.interval_stage import IntervalStage, RejectedReading
from streams.analytics.interval_store import PARTITION_KEY

T0 = 1_699_999_200_000  # a multiple of 15 minutes
S, MIN = 1000, 60_000
NOW = T0 + 3 * 3_600_000  # the wall clock of validation and computed_at
RAW, OUT, DLQ = "raw", "out", "dlq"
SERDE = Serde()


def meas(device: str, ts: int, value: float, quantity: str = "P_ACTIVE", prosumer: str | None = None, **kw):
    rec = power_reading(device, ts, value, prosumer_id=prosumer or f"p-{device}", connector_id="c")
    if quantity != "P_ACTIVE":
        rec |= {
            "quantity": quantity,
            "unit": "Wh",
            "obis_code": None,
            "event_id": f"c/{device}/{quantity}/{ts}",
        }
    return rec | kw


def enc(rec: dict) -> bytes:
    return SERDE.encode("Measurement", rec, RAW)


def rec_of(value: bytes, offset: int = 0) -> Record:
    return Record(RAW, 0, offset, b"k", value, NOW)


def strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if k != "computed_at"}


class Both:
    """The old IntervalWorker and the new stage fed the same inputs; collects what each emitted."""

    def __init__(self, cfg: IntervalConfig):
        self.old = IntervalWorker(SERDE, cfg, now_ms=lambda: NOW, interval_topic=OUT, deadletter_topic=DLQ)
        self.new = IntervalStage(SERDE, OUT, cfg, now_ms=lambda: NOW)
        self.state = MemoryState()
        self.old_out: list[dict] = []
        self.new_out: list[dict] = []
        self.old_dead: list[str] = []
        self.new_dead: list[str] = []

    def feed(self, value: bytes, offset: int = 0) -> None:
        for topic, _, body in self.old.handle(value, b"k", RAW, 0, offset):
            rec = SERDE.decode(body, topic)[1]
            if topic == DLQ:
                self.old_dead.append(rec["error_type"])
            else:
                self.old_out.append(strip(rec))
        before = dict(self.state.data)
        try:
            emits = self.new.on_record(rec_of(value, offset), self.state)
        except RejectedReading as exc:
            assert self.state.data == before, "a rejected reading must not change the state"
            self.new_dead.append(exc.error_type)
            return
        for e in emits:
            assert e.topic == OUT
            rec = SERDE.decode(e.value, OUT)[1]
            assert e.key == rec["prosumer_id"].encode()
            self.new_out.append(strip(rec))

    def tick(self, now_ms: int) -> None:
        self.old_out += [strip(SERDE.decode(v, t)[1]) for t, _, v in self.old.tick(now_ms)]
        self.new_out += [
            strip(SERDE.decode(e.value, OUT)[1]) for e in self.new.on_tick(now_ms, 0, self.state)
        ]


def test_same_records_as_the_old_worker_with_late_data_ticks_and_poison():
    cfg = IntervalConfig(expected_period_ms=MIN)
    both = Both(cfg)
    values = []
    # m1 power every minute for 50 min, m2 registers every 5 min for 40 min, m3 silent after 10 min
    for i in range(51):
        values.append(enc(meas("m1", T0 + i * MIN, 1200.0 + 10 * (i % 7))))
        if i % 5 == 0 and i <= 40:
            values.append(enc(meas("m2", T0 + i * MIN, 1000.0 + 40 * i, "E_IMPORT")))
            values.append(enc(meas("m2", T0 + i * MIN, 500.0 + 3 * i, "E_EXPORT")))
        if i <= 10:
            values.append(enc(meas("m3", T0 + i * MIN, -800.0 + 150 * i)))
    rnd = random.Random(3)
    rnd.shuffle(values)  # out of order: closed windows get corrections with higher versions
    values.insert(7, b"\x00not avro")
    values.insert(20, enc(meas("m1", T0 + 3 * MIN, 1200.0, unit="kW")))  # invalid unit
    values.insert(30, values[29])  # exact duplicate
    values.insert(40, SERDE.encode("DeadLetter", _letter(), RAW))  # another contract
    values.append(enc(meas("m1", T0 + 20 * MIN + 30 * S, 0.0)))  # late reading inside a closed window
    values.append(enc(meas("m4", T0 + 52 * MIN, 50.0)))
    values.append(enc(meas("m4", T0 - 2 * 3_600_000, 50.0)))  # older than the correction horizon
    values.append(enc(meas("m2", T0 + 41 * MIN, 230.0, "VOLTAGE_LN", unit="V")))  # ignored quantity
    for off, v in enumerate(values):
        both.feed(v, off)
    both.tick(T0 + 45 * MIN)
    both.tick(T0 + 4 * 3_600_000)  # every window passed

    assert both.new_out == both.old_out
    assert both.new_dead == both.old_dead
    assert sorted(both.new_dead) == ["decode_error", "too_late", "unit_mismatch", "wrong_schema"]
    windows = {(r["device_id"], r["interval_start"]) for r in both.new_out}
    assert {d for d, _ in windows} == {"m1", "m2", "m3", "m4"}
    assert max(r["version"] for r in both.new_out) > 1, "the shuffled input must produce corrections"
    assert {r["method"] for r in both.new_out if r["device_id"] == "m2"} == {"REGISTER_DELTA"}


def _letter() -> dict:
    from edream.deadletter import dead_letter

    return dead_letter("x", 0, 0, None, b"x", "test", "reason")


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_match_the_old_worker(seed):
    """Random fleets, gaps, jitter, replays, out-of-order bursts and ticks: identical records, ids and versions."""
    rnd = random.Random(seed)
    cfg = IntervalConfig(expected_period_ms=30 * S, allowed_lateness_ms=rnd.choice([0, 30 * S, 120 * S]))
    both = Both(cfg)
    meters = [f"d{i}" for i in range(rnd.randint(1, 6))]
    readings = []
    for d in meters:
        t = T0 + rnd.randint(-10, 10) * MIN
        q = rnd.choice(["P_ACTIVE", "P_ACTIVE", "E_IMPORT"])
        v = 0.0
        while t < T0 + 100 * MIN:
            v = v + rnd.uniform(0, 50) if q == "E_IMPORT" else rnd.uniform(-3000, 3000)
            readings.append(meas(d, t, round(v, 3), q))
            t += rnd.choice([30 * S, 30 * S, 60 * S, 7 * MIN]) + rnd.randint(-3, 3) * S
    readings.sort(key=lambda r: r["ts"])
    for i in range(0, len(readings) - 10, 10):  # local disorder
        if rnd.random() < 0.3:
            chunk = readings[i : i + 10]
            rnd.shuffle(chunk)
            readings[i : i + 10] = chunk
    stream = []
    for r in readings:
        stream.append(enc(r))
        if rnd.random() < 0.05:  # an at-least-once replay of a recent reading (or a reading seen soon after)
            stream.append(enc(rnd.choice(readings[max(0, len(stream) - 30) : len(stream) + 5])))
    for off, v in enumerate(stream):
        both.feed(v, off)
        if rnd.random() < 0.02:
            both.tick(readings[min(len(readings) - 1, off)]["ts"] + rnd.randint(0, 20) * MIN)
    both.tick(T0 + 10 * 3_600_000)
    assert both.new_out == both.old_out
    assert both.new_dead == both.old_dead
    assert both.new_out, "the stream must close windows"


def test_silent_meter_closes_only_when_the_wall_clock_passes_end_plus_lateness():
    cfg = IntervalConfig(expected_period_ms=MIN, allowed_lateness_ms=30 * S)
    stage = IntervalStage(SERDE, OUT, cfg, now_ms=lambda: NOW)
    state = MemoryState()
    for i in range(11):  # 600 W every minute for 10 minutes, then silent
        assert stage.on_record(rec_of(enc(meas("m1", T0 + i * MIN, 600.0))), state) == []
    assert stage.processor.open_windows(state) == {T0 + 15 * MIN: ["m1"]}
    assert stage.on_tick(T0 + 15 * MIN + 29 * S, 0, state) == []
    (emit,) = stage.on_tick(T0 + 15 * MIN + 30 * S, 0, state)
    r = SERDE.decode(emit.value, OUT)[1]
    assert (r["event_id"], r["version"]) == (f"m1/{T0}/1", 1)
    assert r["import_wh"] == pytest.approx(100.0) and r["completeness"] == pytest.approx(600 / 900)
    assert stage.processor.open_windows(state) == {}
    assert stage.on_tick(T0 + 16 * MIN, 0, state) == []  # ticks are idempotent: closed once


def test_meters_flushing_an_hour_after_the_ticks_passed_it_give_one_record_per_window_as_the_old_worker():
    """The demo's start (and any connector flushing its buffer): the stage ticks, then 50 meters upload their last
    hour of 30-s readings, interleaved oldest first. Before windows settled, each reading re-emitted its closed
    window: versions 1-31 per window, version 1 empty (completeness 0)."""
    cfg = IntervalConfig(expected_period_ms=30 * S, allowed_lateness_ms=30 * S)
    both, now = Both(cfg), T0 + 3_600_000
    both.tick(now)
    readings = [meas(f"m{d}", T0 + 15 * S + k * 30 * S, 1000.0 + d) for k in range(120) for d in range(50)]
    for off, r in enumerate(readings):
        both.feed(enc(r), off)
        if off % 1000 == 999:
            both.tick(now + off)  # ticks during the upload (a second apart) emit nothing partial
    both.tick(now + 30 * S)
    assert both.new_out == both.old_out
    assert sorted((r["device_id"], r["interval_start"], r["version"]) for r in both.new_out) == sorted(
        (f"m{d}", T0 + k * 900 * S, 1) for d in range(50) for k in range(4)
    )
    assert min(r["completeness"] for r in both.new_out) == pytest.approx(885 / 900)


def test_state_written_before_windows_settled_still_loads():
    state = MemoryState()
    state.set(PARTITION_KEY, orjson.dumps({"watermark": T0, "max_event_ts": T0 + 30 * S, "open": {}}))
    state.set("m:m1", orjson.dumps({"prosumer_id": "p", "chunks": {}, "open": {}, "emitted": {}}))
    proc = IntervalProcessor(IntervalConfig(expected_period_ms=MIN), now_ms=lambda: NOW)
    assert proc.process(meas("m1", T0 + MIN, 100.0), state).status == "accepted"
    assert proc.advance_to(T0 + 2 * MIN, state) == []


def test_poison_readings_never_change_state():
    stage = IntervalStage(SERDE, OUT, IntervalConfig(expected_period_ms=MIN), now_ms=lambda: NOW)
    state = MemoryState()
    for i in range(5):
        stage.on_record(rec_of(enc(meas("m1", T0 + i * MIN, 500.0))), state)
    before = dict(state.data)
    poison = {
        "decode_error": b"\x00garbage",
        "ts_out_of_range": enc(meas("m1", 10, 500.0)),  # a device clock in 1970
        "ts_in_future": enc(meas("m1", NOW + 3_600_000, 500.0)),  # would move the watermark an hour ahead
        "unit_mismatch": enc(meas("m1", T0 + 6 * MIN, 500.0, unit="kW")),
        "missing_field": enc(meas("m1", T0 + 6 * MIN, 500.0, device_id="")),
        "bad_quality": enc(meas("m1", T0 + 6 * MIN, 500.0, quality="BAD")),
    }
    for code, value in poison.items():
        with pytest.raises(RejectedReading) as info:
            stage.on_record(rec_of(value), state)
        assert info.value.error_type == code, str(info.value)
        assert state.data == before
    with pytest.raises(RejectedReading, match="too_late|horizon") as info:
        stage.on_tick(NOW, 0, state)  # the wall clock closes everything ...
        stage.on_record(rec_of(enc(meas("m1", T0, 1.0))), state)  # ... and an hour later T0 is too late
    assert info.value.error_type == "too_late"


def test_state_is_per_meter_json_and_packed_samples():
    cfg = IntervalConfig()
    proc = IntervalProcessor(cfg, now_ms=lambda: NOW)
    state = MemoryState()
    for step in range(12):  # 1,000 meters, one minute of 5-s readings
        for d in range(1000):
            proc.process(meas(f"m{d}", T0 + step * 5 * S + d, 100.0), state)
    keys = state.data
    assert len(keys) == 1 + 2 * 1000  # the partition key, one meter key and one sample chunk per meter
    assert len(keys[PARTITION_KEY]) < 200, "the partition key must not grow with the number of meters"
    assert max(len(v) for k, v in keys.items() if k.startswith("m:")) < 200
    assert len(keys[f"s:m7:P_ACTIVE:{T0}"]) == 12 * 16  # (int64 ts, float64 W) per sample
    for k, v in keys.items():
        if not k.startswith("s:"):
            orjson.loads(v)  # JSON, never pickle
    (end,) = proc.open_windows(state)
    out = proc.advance_to(end + cfg.allowed_lateness_ms, state)
    assert len(out) == 1000 and proc.open_windows(state) == {}


def test_old_chunks_are_dropped_after_the_correction_horizon():
    cfg = IntervalConfig(expected_period_ms=MIN)
    proc = IntervalProcessor(cfg, now_ms=lambda: NOW)
    state = MemoryState()
    for i in range(0, 4 * 60):  # four hours of one reading per minute
        proc.process(meas("m1", T0 + i * MIN, 100.0), state)
    chunks = sorted(int(k.rsplit(":", 1)[1]) for k in state.data if k.startswith("s:"))
    # kept: the windows still correctable (1 h), the one whose samples may straddle into them, the open ones
    assert chunks == [T0 + k * cfg.interval_ms for k in range(9, 16)]
    emitted = orjson.loads(state.data["m:m1"])["emitted"]
    assert len(emitted) <= cfg.correction_horizon_ms // cfg.interval_ms + 1
