"""Proof of relief on a small hand-made grid: a 250 kVA transformer T1 and the line L2 feeding the far bus, four
prosumers at 80 kW (two behind L2), every one ordered to reduce 30 kW. Pure parts: the loading recomputed from
measured kW and the verdicts, a defector behind L2 leaving that feeder PARTIALLY_RELIEVED; then the grid stage's
processor (in-memory state, no broker): orders and intervals in, EXPECTED then MEASURED GridRelief records out,
the grace for a silent meter, bad intervals refused, and the same ids on a replay."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from edream.paths import TOPOLOGY_FILE
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from edream.settings import Settings
from edream.topology import load_topology
from streams.agents.grid import stage
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.grid.config import load_grid_config
from streams.grid.congestion import forecast_congestion
from streams.grid.injections import Injections
from streams.grid.measured_relief import Verdict, measured_loading, measured_slot, verdict
from streams.grid.model import build_grid_model
from streams.grid.pgm_engine import PgmEngine
from streams.grid.relief import expected_relief
from streams.grid.stage import CongestionProcessor, Topics
from streams.validation.fields import InvalidRecord
from tools.sim.grid_feed import SLOT_MS, forecast, write_feeder_grid
from tools.sim.interval_feed import interval

PROSUMERS = ("p0", "p1", "p2", "p3")  # p0, p2 on LV1; p1, p3 on LV2 (behind L2)
FORECAST_KW, ORDERED_KW = 80.0, 30.0
NOW = 1_779_000_000_000 - 1_779_000_000_000 % SLOT_MS + 60_000  # a minute into a quarter hour
SLOT = NOW - NOW % SLOT_MS + SLOT_MS  # the next quarter hour
TOPICS = Topics(
    "forecast.profiles.v1",
    "grid.congestion.v1",
    orders="flex.orders.v1",
    intervals="meter.intervals.15m.v1",
    relief="grid.relief.v1",
)
SERDE = Serde()


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """The feeder grid with L2 (about 187 kVA) as a second congestion point, limit 60 %."""
    path = write_feeder_grid(tmp_path_factory.mktemp("relief"), prosumers=PROSUMERS)
    mapping = yaml.safe_load(path.read_text())
    mapping["congestion_points"].append(
        {
            "id": "feeder/L2",
            "area_id": "feeder",
            "asset": {"kind": "line", "index": "L2"},
            "max_loading_percent": 60,
        }
    )
    path.write_text(yaml.safe_dump(mapping))
    model = build_grid_model(load_grid_config(path))
    return model, PgmEngine(model)


def _order(prosumers=PROSUMERS, revision: int = 1, status: str = "ACTIVE", created_at: int = NOW - 5_000):
    allocations = tuple(OrderAllocation(p, SLOT, ORDERED_KW, FORECAST_KW) for p in prosumers)
    return FlexOrder("o1", "f1", "r1", revision, Direction.REDUCE, status, allocations, 15, created_at)


def _measured(model, engine, kw: dict[str, float], expected=None) -> dict[str, float | None]:
    return measured_loading(model, engine, measured_slot(model, SLOT, kw, expected))


def test_verdicts():
    assert verdict(130.0, 90.0, 100.0) is Verdict.RELIEVED
    assert verdict(130.0, 110.0, 100.0) is Verdict.PARTIALLY_RELIEVED
    assert verdict(130.0, 130.0, 100.0) is Verdict.NOT_RELIEVED
    assert verdict(90.0, 105.0, 100.0) is Verdict.NOT_RELIEVED  # congestion the forecast did not see
    assert verdict(90.0, 95.0, 100.0) is Verdict.NOT_CONGESTED
    assert verdict(None, 95.0, 100.0) is Verdict.UNKNOWN and verdict(130.0, None, 100.0) is Verdict.UNKNOWN


def test_measured_delivery_relieves_both_points_and_a_defector_leaves_its_feeder_partially_relieved(grid):
    model, engine = grid
    zeros = np.zeros((1, 0))
    inj = Injections(np.full((1, 4), FORECAST_KW), zeros, zeros, zeros)
    before = forecast_congestion(model, engine, inj, [SLOT])
    expected = {
        x.congestion_point_id: x for x in expected_relief(model, engine, inj, [SLOT], before, [_order()])
    }
    assert expected["feeder/T1"].loading_before > 125 and expected["feeder/L2"].loading_before > 80
    assert expected["feeder/T1"].relieved and expected["feeder/L2"].relieved
    assert expected["feeder/T1"].ordered_kw == pytest.approx(-4 * ORDERED_KW)

    delivered = {p: FORECAST_KW - ORDERED_KW for p in PROSUMERS}
    all_in = _measured(model, engine, delivered)
    for cp in ("feeder/T1", "feeder/L2"):  # everyone delivered: measured = expected
        assert all_in[cp] == pytest.approx(expected[cp].loading_after, abs=1e-9)
        assert (
            verdict(expected[cp].loading_before, all_in[cp], 100 if cp == "feeder/T1" else 60)
            is Verdict.RELIEVED
        )

    defect = _measured(model, engine, {**delivered, "p3": FORECAST_KW})  # p3 (behind L2) kept consuming
    assert verdict(expected["feeder/T1"].loading_before, defect["feeder/T1"], 100) is Verdict.RELIEVED
    assert 60 < defect["feeder/L2"] < expected["feeder/L2"].loading_before
    assert (
        verdict(expected["feeder/L2"].loading_before, defect["feeder/L2"], 60) is Verdict.PARTIALLY_RELIEVED
    )


def test_a_silent_meter_takes_its_expected_kw_and_is_counted(grid):
    model, engine = grid
    expected_kw = [FORECAST_KW - ORDERED_KW] * 4
    slot = measured_slot(model, SLOT, {"p0": 50.0, "p1": 50.0, "p2": 50.0}, expected_kw)
    assert slot.missing == 1 and slot.prosumer_kw.tolist() == [50.0, 50.0, 50.0, 50.0]
    assert measured_slot(model, SLOT, {}, None).prosumer_kw.tolist() == [0.0] * 4


# -- the grid stage's processor ---------------------------------------------------------------------------------
class Clock:
    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def _proc(grid, clock: Clock) -> CongestionProcessor:
    model, engine = grid
    return CongestionProcessor(
        SERDE, {"feeder": model}, {"feeder": engine}, TOPICS, now_ms=clock, grace_ms=600_000
    )


def _rec(topic: str, contract: str, value: dict) -> Record:
    return Record(topic, 0, 0, b"feeder", SERDE.encode(contract, value, topic), NOW)


def _interval(prosumer: str, kw: float, computed_at: int, **over) -> dict:
    return {**interval(prosumer, SLOT, kw, computed_at=computed_at), **over}


def _relief(emits) -> list[dict]:
    return [SERDE.decode(e.value, e.topic)[1] for e in emits if e.topic == TOPICS.relief]


def _ordered(grid):
    """A processor at ``NOW`` that has every prosumer's forecast and the order: (clock, state, processor)."""
    clock, state = Clock(NOW), MemoryState()
    proc = _proc(grid, clock)
    for p in PROSUMERS:
        proc.on_record(
            _rec(TOPICS.forecasts, "Forecast", forecast(p, SLOT, [FORECAST_KW] * 2, NOW - 10_000)), state
        )
    proc.on_record(_rec(TOPICS.orders, "FlexOrder", _order().to_avro()), state)
    return clock, state, proc


def _run(grid, defector: str | None):
    """Forecasts and the order before the slot, intervals after it; (expected records, measured records, state)."""
    clock, state, proc = _ordered(grid)
    expected = _relief(proc.on_tick(NOW, 0, state))
    clock.ms = SLOT + SLOT_MS + 60_000
    for i, p in enumerate(PROSUMERS[:3]):
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval(p, 50.0, clock.ms - 10 + i)), state)
    assert _relief(proc.on_tick(clock.ms, 0, state)) == []  # p3's meter is not in yet, grace not over
    kw = FORECAST_KW if defector == "p3" else FORECAST_KW - ORDERED_KW
    proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval("p3", kw, clock.ms - 1)), state)
    return expected, _relief(proc.on_tick(clock.ms, 0, state)), state


def test_the_stage_publishes_expected_then_measured_relief_with_deterministic_ids(grid):
    expected, measured, state = _run(grid, defector="p3")
    by_cp = {r["congestion_point_id"]: r for r in expected}
    assert set(by_cp) == {"feeder/T1", "feeder/L2"}
    t1 = by_cp["feeder/T1"]
    assert t1["phase"] == "EXPECTED" and t1["verdict"] == "PENDING" and t1["slot_start"] == SLOT
    assert t1["loading_before_percent"] > 125 > 100 > t1["loading_expected_percent"]
    assert t1["overload_before_kw"] > 60 and t1["overload_expected_kw"] == 0.0
    assert t1["ordered_kw"] == pytest.approx(-120.0) and t1["orders"] == 1 and t1["prosumers"] == 4
    assert t1["version"] == NOW - 5_000 and t1["event_id"] == f"feeder/T1/{SLOT}/{NOW - 5_000}"

    got = {r["congestion_point_id"]: r for r in measured}
    assert {c: r["verdict"] for c, r in got.items()} == {
        "feeder/T1": "RELIEVED",
        "feeder/L2": "PARTIALLY_RELIEVED",
    }
    l2 = got["feeder/L2"]
    assert l2["phase"] == "MEASURED" and l2["missing_meters"] == 0
    assert l2["loading_expected_percent"] < 60 < l2["loading_measured_percent"] < l2["loading_before_percent"]
    assert 0 < l2["overload_measured_kw"] < l2["overload_before_kw"]
    assert l2["version"] == SLOT + SLOT_MS + 60_000 and l2["version"] > by_cp["feeder/L2"]["version"]
    assert any(k.startswith("rm|feeder|") for k in state.data)  # kept for corrections

    again_expected, again_measured, _ = _run(grid, defector="p3")  # a replay from scratch: the same ids
    assert [r["event_id"] for r in again_expected + again_measured] == [
        r["event_id"] for r in expected + measured
    ]


def test_a_silent_meter_is_measured_after_the_grace_and_flagged(grid):
    clock, state, proc = _ordered(grid)
    proc.on_tick(NOW, 0, state)
    clock.ms = SLOT + SLOT_MS + 60_000
    for p in PROSUMERS[:3]:
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval(p, 50.0, clock.ms)), state)
    assert _relief(proc.on_tick(clock.ms, 0, state)) == []
    late = _relief(proc.on_tick(SLOT + SLOT_MS + 600_000, 0, state))
    assert {r["verdict"] for r in late} == {"RELIEVED"} and {r["missing_meters"] for r in late} == {1}


def test_a_late_meter_and_a_corrected_interval_measure_a_slot_again_until_its_corrections_window_ends(grid):
    clock, state, proc = _ordered(grid)
    proc.on_tick(NOW, 0, state)
    end = SLOT + SLOT_MS
    clock.ms = end + 60_000
    for p in PROSUMERS[:3]:
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval(p, 50.0, end + 60_000)), state)
    first = {r["congestion_point_id"]: r for r in _relief(proc.on_tick(end + 600_000, 0, state))}
    assert {r["verdict"] for r in first.values()} == {"RELIEVED"}  # p3 silent: at its expected kW
    assert {r["missing_meters"] for r in first.values()} == {1}

    # p3's meter comes in late: it did not deliver (its feeder only partially relieved)
    clock.ms = end + 700_000
    late = _interval("p3", FORECAST_KW, clock.ms)
    proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", late), state)
    again = {r["congestion_point_id"]: r for r in _relief(proc.on_tick(end + 720_000, 0, state))}
    assert {c: r["verdict"] for c, r in again.items()} == {
        "feeder/T1": "RELIEVED",
        "feeder/L2": "PARTIALLY_RELIEVED",
    }
    assert {r["missing_meters"] for r in again.values()} == {0} and {r["phase"] for r in again.values()} == {
        "MEASURED"
    }
    assert all(again[c]["version"] > first[c]["version"] for c in again)
    assert again["feeder/L2"]["loading_measured_percent"] > first["feeder/L2"]["loading_measured_percent"]
    assert _relief(proc.on_tick(end + 730_000, 0, state)) == []  # nothing changed since

    # the same interval again (a replay) changes nothing; the interval stage's correction (version 2) does
    proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", late), state)
    assert _relief(proc.on_tick(end + 740_000, 0, state)) == []
    clock.ms = end + 800_000
    fixed = _interval("p3", FORECAST_KW - ORDERED_KW, clock.ms, version=2)
    proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", fixed), state)
    third = {r["congestion_point_id"]: r for r in _relief(proc.on_tick(end + 810_000, 0, state))}
    assert {r["verdict"] for r in third.values()} == {"RELIEVED"}
    assert all(third[c]["version"] > again[c]["version"] for c in third)

    # after the corrections window (2 h after the slot's end) the slot's state goes; later intervals are ignored
    proc.on_tick(end + 2 * 3_600_000, 0, state)
    fc = {k: v for k, v in state.data.items() if k.startswith("fc|")}
    assert state.data == {"rx|feeder": b"[]", "rc|feeder": b"{}"} | fc
    clock.ms = end + 3 * 3_600_000
    too_late = _interval("p3", 1.0, clock.ms, version=3)
    proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", too_late), state)
    assert _relief(proc.on_tick(clock.ms, 0, state)) == []
    assert state.data == {"rx|feeder": b"[]", "rc|feeder": b"{}"} | fc


def test_bad_intervals_and_orders_are_refused_before_they_touch_state(grid):
    clock, state = Clock(SLOT + SLOT_MS + 60_000), MemoryState()
    proc = _proc(grid, clock)
    with pytest.raises(InvalidRecord, match="avg_kw"):
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval("p0", math.nan, NOW)), state)
    ahead = {"interval_start": SLOT + 4 * SLOT_MS, "interval_end": SLOT + 5 * SLOT_MS}
    with pytest.raises(InvalidRecord, match="interval_end"):
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval("p0", 1.0, NOW, **ahead)), state)
    with pytest.raises(ValueError, match="not mapped"):
        proc.on_record(_rec(TOPICS.intervals, "IntervalEnergy", _interval("p9", 1.0, NOW)), state)
    bad = _order().to_avro()
    bad["allocations"][0]["kw"] = math.inf
    with pytest.raises(InvalidRecord, match="kw"):
        proc.on_record(_rec(TOPICS.orders, "FlexOrder", bad), state)
    assert state.data == {}


def test_the_stage_re_keys_orders_and_intervals_to_their_grid_and_relief_is_off_without_grids_or_when_asked(
    tmp_path,
):
    path = write_feeder_grid(tmp_path, prosumers=PROSUMERS)
    topology = load_topology(TOPOLOGY_FILE)
    on = stage(Settings(grid_configs=str(path)), topology)
    assert (
        set(on.inputs) == {TOPICS.forecasts, TOPICS.orders, TOPICS.intervals} and TOPICS.relief in on.outputs
    )
    order = _order(prosumers=("p1", "elsewhere")).to_avro()
    assert list(on.rekey[TOPICS.orders](None, SERDE.encode("FlexOrder", order, TOPICS.orders))) == [b"feeder"]
    stray = _order(prosumers=("elsewhere",)).to_avro()
    assert list(on.rekey[TOPICS.orders](None, SERDE.encode("FlexOrder", stray, TOPICS.orders))) == []
    interval = SERDE.encode("IntervalEnergy", _interval("p2", 1.0, NOW), TOPICS.intervals)
    assert list(on.rekey[TOPICS.intervals](None, interval)) == [b"feeder"]
    off = stage(Settings(grid_configs=str(path), grid_relief=False), topology)
    assert off.inputs == (TOPICS.forecasts,) and TOPICS.relief not in off.outputs
    assert stage(Settings(grid_configs=""), topology).inputs == (
        TOPICS.forecasts,
    )  # no grid: nothing to prove


def test_the_latest_order_revision_counts_and_a_cancelled_order_leaves_nothing_to_prove(grid):
    clock, state, proc = _ordered(grid)
    first = {r["congestion_point_id"]: r for r in _relief(proc.on_tick(NOW, 0, state))}
    amended = _order(prosumers=("p0", "p1"), revision=2, status="AMENDED", created_at=NOW - 1_000)
    proc.on_record(_rec(TOPICS.orders, "FlexOrder", amended.to_avro()), state)
    proc.on_record(_rec(TOPICS.orders, "FlexOrder", _order().to_avro()), state)  # revision 1 again: ignored
    second = {r["congestion_point_id"]: r for r in _relief(proc.on_tick(NOW + 2_000, 0, state))}
    assert (
        second["feeder/T1"]["ordered_kw"] == pytest.approx(-60.0)
        and second["feeder/T1"]["version"] == NOW - 1_000
    )
    assert second["feeder/T1"]["loading_expected_percent"] > first["feeder/T1"]["loading_expected_percent"]
    assert list(proc.on_tick(NOW + 4_000, 0, state)) == []  # nothing changed: nothing re-sent
    cancelled = _order(revision=3, status="CANCELLED", created_at=NOW - 500)
    proc.on_record(_rec(TOPICS.orders, "FlexOrder", cancelled.to_avro()), state)
    assert _relief(proc.on_tick(NOW + 6_000, 0, state)) == []
    assert (
        _relief(proc.on_tick(SLOT + SLOT_MS + 600_000, 0, state)) == []
    )  # no MEASURED for a cancelled order
    assert not any(k.startswith(("ro|", "rs|", "rm|")) for k in state.data)
