"""The grid stage's processor with in-memory state: forecasts stored per prosumer, congestion recomputed on the tick
after a change only, a prosumer without forecast counted as 0 kW and flagged, bad records refused, the DSO role's
signed requests; the figures equal the pure congestion forecast of the same kW."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from edream.demo.keys import demo_address, demo_key
from edream.runtime.contract import Record
from edream.runtime.state import MemoryState
from edream.serde import Serde
from streams.agents.grid import load_grids
from streams.flex.authentication import authenticate
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.requests import FlexRequest
from streams.grid.config import GridConfigError, load_grid_config
from streams.grid.congestion import forecast_congestion
from streams.grid.injections import Injections
from streams.grid.model import build_grid_model
from streams.grid.pgm_engine import PgmEngine
from streams.grid.stage import CongestionProcessor, DsoRole, Topics
from streams.validation.fields import InvalidRecord
from tools.sim.grid_feed import SLOT_MS, forecast, write_feeder_grid

NOW = 1_779_000_000_000 - 1_779_000_000_000 % SLOT_MS + 60_000  # a minute into a quarter hour
FIRST = NOW - NOW % SLOT_MS
FC, OUT, REQ = "forecast.profiles.v1", "grid.congestion.v1", "flex.requests.v1"
SERDE = Serde()
DSO = "dso-grid"
#: p0 and p1: 100 kW each but 160 kW in slots 2-3 (320 kW on a 250 kVA transformer)
KW = [100.0, 100.0, 160.0, 160.0, 100.0, 100.0]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    path = write_feeder_grid(tmp_path_factory.mktemp("grid"), prosumers=("p0", "p1", "p2"))
    model = build_grid_model(load_grid_config(path))
    return path, model


def _proc(grid, dso: DsoRole | None = None) -> CongestionProcessor:
    _, model = grid
    return CongestionProcessor(
        SERDE,
        {"feeder": model},
        {"feeder": PgmEngine(model)},
        Topics(FC, OUT, REQ),
        dso=dso,
        now_ms=lambda: NOW,
    )


def _record(rec: dict, key: bytes = b"feeder") -> Record:
    return Record(FC, 0, 0, key, SERDE.encode("Forecast", rec, FC), NOW)


def _feed(proc, state, issued_at: int = NOW - 1_000, kw=KW) -> None:
    for p in ("p0", "p1"):
        assert list(proc.on_record(_record(forecast(p, FIRST, kw, issued_at)), state)) == []


def _decoded(emits, topic=OUT) -> list[dict]:
    return [SERDE.decode(e.value, e.topic)[1] for e in emits if e.topic == topic]


def test_tick_after_a_change_forecasts_every_slot_with_the_engines_figures(grid):
    _, model = grid
    proc, state = _proc(grid), MemoryState()
    _feed(proc, state)
    recs = _decoded(proc.on_tick(NOW, 0, state))
    assert [r["slot_start"] for r in recs] == [FIRST + k * SLOT_MS for k in range(len(KW))]
    # the same kW through the pure forecast: p2 has no forecast, so 0 kW, and every slot says so
    kw = np.array([[v, v, 0.0] for v in KW])
    zeros = np.zeros((len(KW), 0))
    want = forecast_congestion(
        model, PgmEngine(model), Injections(kw, zeros, zeros, zeros), [r["slot_start"] for r in recs]
    )
    for r, w in zip(recs, want, strict=True):
        assert r["loading_percent"] == pytest.approx(w.loading_percent, abs=1e-9)
        assert r["missing_forecasts"] == 1 and r["prosumers"] == 3 and r["converged"]
        assert r["event_id"] == f"feeder/T1/{r['slot_start']}/{NOW - 1_000}" and r["grid_id"] == "feeder"
    assert [r["overloaded"] for r in recs] == [False, False, True, True, False, False]
    hot = recs[2]
    assert hot["loading_percent"] > 125 and hot["overload_kw"] == pytest.approx(
        (hot["loading_percent"] - 100) * 2.5
    )
    assert 80 < recs[0]["loading_percent"] < 88  # 200 kW on 250 kVA, plus losses and reactive power
    # the overloaded slots carry the transformer's sensitivity to each prosumer (100 % / 250 kVA plus losses)
    for r, w in zip(recs, want, strict=True):
        got = {x["prosumer_id"]: x["percent_per_kw"] for x in r["sensitivities"]}
        assert got == pytest.approx(dict(w.sensitivity), abs=1e-9) and bool(got) == r["overloaded"]
    assert {x["prosumer_id"] for x in hot["sensitivities"]} == {"p0", "p1", "p2"}
    assert all(0.4 < x["percent_per_kw"] < 0.6 for x in hot["sensitivities"]), hot["sensitivities"]
    assert list(proc.on_tick(NOW + 2_000, 0, state)) == []  # nothing changed: no recompute


def test_only_newer_forecasts_change_the_result_and_production_nets_out(grid):
    proc, state = _proc(grid), MemoryState()
    _feed(proc, state)
    first = _decoded(proc.on_tick(NOW, 0, state))
    _feed(proc, state, issued_at=NOW - 5_000, kw=[10.0] * 6)  # issued earlier: ignored
    assert list(proc.on_tick(NOW + 2_000, 0, state)) == []
    pv = forecast("p0", FIRST, [120.0] * 6, NOW - 500, prop="ENERGY_PRODUCTION")
    proc.on_record(_record(pv), state)
    second = _decoded(proc.on_tick(NOW + 4_000, 0, state))
    assert [r["overloaded"] for r in second] == [False] * 6  # 320 - 120 kW on 250 kVA
    assert all(b["loading_percent"] < a["loading_percent"] for a, b in zip(first, second, strict=True))
    assert {r["forecast_issued_at"] for r in second} == {NOW - 500}


def test_slots_before_the_current_quarter_hour_and_uncovered_slots_are_left_out(grid):
    proc, state = _proc(grid), MemoryState()
    proc.on_record(_record(forecast("p0", FIRST - 2 * SLOT_MS, [50.0] * 4, NOW - 1_000)), state)
    recs = _decoded(proc.on_tick(NOW, 0, state))
    assert [r["slot_start"] for r in recs] == [FIRST, FIRST + SLOT_MS]
    assert {r["missing_forecasts"] for r in recs} == {2}


def test_bad_records_raise_for_the_dead_letter_topic(grid):
    proc, state = _proc(grid), MemoryState()
    with pytest.raises(InvalidRecord, match="value"):
        proc.on_record(_record(forecast("p0", FIRST, [math.nan], NOW)), state)
    with pytest.raises(InvalidRecord, match="issued_at"):
        proc.on_record(_record(forecast("p0", FIRST, [1.0], NOW + 3_600_000)), state)
    with pytest.raises(ValueError, match="unknown grid"):
        proc.on_record(_record(forecast("p0", FIRST, [1.0], NOW), key=b"elsewhere"), state)
    with pytest.raises(ValueError, match="not mapped"):
        proc.on_record(_record(forecast("p9", FIRST, [1.0], NOW)), state)
    assert list(proc.on_tick(NOW, 0, state)) == []  # nothing was stored


def test_dso_role_sends_signed_requests_for_the_overloaded_slots_only(grid):
    key = demo_key(1, DSO)
    proc, state = _proc(grid, DsoRole(DSO, key)), MemoryState()
    _feed(proc, state)
    emits = list(proc.on_tick(NOW, 0, state))
    requests = [FlexRequest.from_avro(r) for r in _decoded(emits, REQ)]
    assert len(requests) == 1
    req = requests[0]
    assert req.area_id == "feeder" and req.direction.name == "REDUCE"
    assert [s.slot_start for s in req.slots] == [FIRST + 2 * SLOT_MS, FIRST + 3 * SLOT_MS]
    assert all(60 < s.kw < 120 for s in req.slots)  # ~(128 - 95) % of 250 kVA, through the less effective bus
    assert authenticate(req, DsoRegistry([Dso(dso_id=DSO, eth_address=demo_address(1, DSO))])) is None
    assert _decoded(list(_proc(grid).on_tick(NOW, 0, state)), REQ) == []  # role off (and nothing dirty)


def _mapping(folder, name: str, prosumers: tuple[str, ...]) -> str:
    """A mapping file only (load_grids does not open the network)."""
    folder.mkdir()
    doc = {
        "network": "feeder.json",
        "congestion_points": [{"id": f"{name}/T1", "area_id": name, "asset": {"kind": "trafo", "index": 0}}],
        "prosumers": [{"prosumer_id": p, "bus": "LV1"} for p in prosumers],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_grid_files_may_not_share_ids_or_prosumers(tmp_path):
    a = _mapping(tmp_path / "a", "north", ("p0",))
    b = _mapping(tmp_path / "b", "south", ("p1", "p0"))
    assert set(load_grids(a)) == {"north"}
    with pytest.raises(
        GridConfigError, match=r"south.yaml: prosumers\[1\] 'p0'.*already mapped on grid 'north'"
    ):
        load_grids(f"{a},{b}")
    c = _mapping(tmp_path / "c", "north", ("p5",))
    with pytest.raises(GridConfigError, match="grid id 'north' already used"):
        load_grids(f"{a}, {c}")
    assert load_grids("") == {}
