"""From forecast congestion to signed flexibility requests for that congestion point only, sized so that the
ordered flexibility relieves it (checked by re-running the power flow)."""

from __future__ import annotations

import numpy as np
import pytest

from edream.demo.keys import demo_address, demo_key
from streams.flex.authentication import authenticate
from streams.flex.dsos import Dso, DsoRegistry
from streams.flex.model import Direction
from streams.flex.requests import FlexRequest
from streams.grid.config import GridConfig
from streams.grid.congestion import SlotCongestion, forecast_congestion
from streams.grid.injections import Injections
from streams.grid.model import build_grid_model
from streams.grid.pgm_engine import PgmEngine
from streams.grid.requests import RequestPolicy, congestion_requests, slot_need

DSO = "dso-demo"
KEY = demo_key(1, DSO)
CREATED = 1_779_000_000_000


@pytest.fixture(scope="module")
def demo_requests(demo_model, demo_day) -> tuple[list[SlotCongestion], list[FlexRequest]]:
    slots, inj = demo_day
    congestion = forecast_congestion(demo_model, PgmEngine(demo_model), inj, slots)
    return congestion, congestion_requests(
        demo_model, congestion, DSO, KEY, CREATED, issued_at=CREATED - 60_000
    )


def test_one_signed_request_per_direction_for_the_congested_point(demo_requests):
    congestion, requests = demo_requests
    by_dir = {r.direction: r for r in requests}
    assert len(requests) == 2 and set(by_dir) == {Direction.REDUCE, Direction.INCREASE}
    registry = DsoRegistry([Dso(dso_id=DSO, eth_address=demo_address(1, DSO))])
    for r in requests:
        assert r.area_id == "demo-community" and r.dso_id == DSO
        assert r.reward_micro_per_kwh == 150_000 and r.deadline == CREATED + 30 * 60_000
        assert authenticate(r, registry) is None  # the flex desk accepts the DSO's signature
    hot = {s.slot_start: s for s in congestion if s.overloaded}
    assert {x.slot_start for r in requests for x in r.slots} == set(
        hot
    )  # every overloaded slot, nothing else
    hours = {(x.slot_start // 3_600_000) % 24 for x in by_dir[Direction.REDUCE].slots}
    assert hours == {18}  # evening EV peak: consume less
    assert {(x.slot_start // 3_600_000) % 24 for x in by_dir[Direction.INCREASE].slots} <= set(range(9, 15))
    for x in by_dir[
        Direction.INCREASE
    ].slots:  # sized on the least effective prosumer: >= overload/sensitivity
        s = hot[x.slot_start]
        assert x.kw >= (s.loading_percent - 95.0) / max(abs(v) for v in s.sensitivity.values())


def test_same_forecast_same_request_ids(demo_model, demo_requests):
    congestion, requests = demo_requests
    again = congestion_requests(demo_model, congestion, DSO, KEY, CREATED + 5_000, issued_at=CREATED - 60_000)
    assert [r.request_id for r in again] == [r.request_id for r in requests]


def test_ordered_flexibility_relieves_the_transformer(demo_model, demo_day, demo_requests):
    """Proof of relief: every prosumer of the area delivers an equal share of the requested kW; the re-run power
    flow is under the 100 % limit in every slot that was requested."""
    slots, inj = demo_day
    _, requests = demo_requests
    after = inj.prosumer_kw.copy()
    share = len(demo_model.prosumer_ids)
    for r in requests:
        sign = -1.0 if r.direction is Direction.REDUCE else 1.0
        for x in r.slots:
            after[int(np.searchsorted(slots, x.slot_start))] += sign * x.kw / share
    res = PgmEngine(demo_model).run(Injections(after, inj.load_kw, inj.load_kvar, inj.sgen_kw))
    requested = [int(np.searchsorted(slots, x.slot_start)) for r in requests for x in r.slots]
    assert res.converged.all()
    assert res.loading_percent[requested, 0].max() <= 96.0  # aimed at 95 % (margin 5 %-points)
    assert res.loading_percent[:, 0].max() <= 100.0


def test_only_the_congested_point_is_asked(demo_model, demo_day):
    """A second congestion point (a feeder cable far below its limit) gets no request; the feeder's zone holds only
    the prosumers downstream of it."""
    cfg = GridConfig.model_validate(
        {
            "network": demo_model.network,
            "background": "simbench-profiles",
            "congestion_points": [
                {"id": "tr", "area_id": "area-tr", "asset": {"kind": "trafo", "index": 0}},
                {"id": "feeder", "area_id": "area-feeder", "asset": {"kind": "line", "index": 9}},
            ],
            "prosumers": [
                {"prosumer_id": p, "bus": int(b)}
                for p, b in zip(demo_model.prosumer_ids, demo_model.prosumer_buses, strict=True)
            ],
        }
    )
    model = build_grid_model(cfg)
    slots, inj = demo_day
    congestion = forecast_congestion(
        model, PgmEngine(model), inj.take(np.arange(72, 76)), slots[72:76]
    )  # 18:00-19:00
    feeder = [s for s in congestion if s.congestion_point_id == "feeder"]
    assert feeder and not any(s.overloaded for s in feeder)
    requests = congestion_requests(model, congestion, DSO, KEY, CREATED, issued_at=CREATED)
    assert [r.area_id for r in requests] == ["area-tr"]
    assert 0 < len(model.zone_prosumers(model.congestion_points[1])) < len(model.prosumer_ids)


def test_slot_need_ignores_unconverged_and_unrelieved_slots():
    base = dict(
        congestion_point_id="cp",
        area_id="a",
        slot_start=0,
        max_loading_percent=100.0,
        overload_kw=0.0,
        vm_min_pu=1.0,
        vm_max_pu=1.0,
        undervoltage_buses=0,
        overvoltage_buses=0,
    )
    flagged = SlotCongestion(converged=False, loading_percent=None, **base)
    assert slot_need(flagged, ["p1"], 5.0) is None
    hot = SlotCongestion(converged=True, loading_percent=110.0, sensitivity={"p1": 0.5, "p2": 0.25}, **base)
    assert slot_need(hot, ["p1", "p2"], 5.0) == (Direction.REDUCE, pytest.approx(15.0 / 0.25))
    assert slot_need(hot, ["p3"], 5.0) is None  # nobody of the area influences the asset
    far = SlotCongestion(converged=True, loading_percent=110.0, sensitivity={"p1": 0.0}, **base)
    assert slot_need(far, ["p1"], 5.0) is None
    assert RequestPolicy().margin_percent == 5.0
