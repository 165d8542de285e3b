"""Capability MILP on hand-checkable portfolios (the expected numbers are derived in the comments)."""

import pytest

from streams.vpp.assets import SERVICES, Asset, AssetKind, Direction, ExclusionReason, ServiceSpec
from streams.vpp.capability import CapabilityRequest, evaluate_capability

UP = frozenset({Direction.UP})
UPDOWN = frozenset({Direction.UP, Direction.DOWN})
DOWN = frozenset({Direction.DOWN})
HOUR_MS = 3_600_000


@pytest.fixture(params=["highspy", "pyomo"])
def backend(request):
    """Every hand-checked case runs on the fast path and on the Pyomo reference."""
    return request.param


def gens_and_loads():
    """3 generators + 5 curtailable loads (10 kW each, response 2/5/30/60/300 s).

    G1 and G2 run now; once off they need 300 s / 120 s to restart, so for 10 s and 30 s products they only
    give spinning reserve."""
    gens = [
        Asset(
            "G1",
            AssetKind.GENERATOR,
            p_min_kw=20,
            p_max_kw=100,
            current_kw=60,
            ramp_kw_per_s=2.0,
            response_time_s=1,
            start_up_time_s=300,
            marginal_cost_micro_per_kwh=50_000,
            directions=UPDOWN,
        ),
        Asset(
            "G2",
            AssetKind.GENERATOR,
            p_min_kw=10,
            p_max_kw=50,
            current_kw=40,
            ramp_kw_per_s=0.5,
            response_time_s=5,
            start_up_time_s=120,
            marginal_cost_micro_per_kwh=80_000,
            directions=UPDOWN,
        ),
        Asset(
            "G3",
            AssetKind.GENERATOR,
            p_min_kw=30,
            p_max_kw=200,
            is_on=False,
            start_up_time_s=600,
            response_time_s=60,
            ramp_kw_per_s=1.0,
            marginal_cost_micro_per_kwh=30_000,
        ),
    ]
    loads = [
        Asset(
            f"L{i + 1}",
            AssetKind.CURTAILABLE_LOAD,
            p_max_kw=10,
            current_kw=10,
            response_time_s=rt,
            uncertainty_min=0.8,
            uncertainty_max=1.2,
        )
        for i, rt in enumerate((2, 5, 30, 60, 300))
    ]
    return gens + loads


def request(service: str, slots: int = 2, lead_ms: int = 0, demand: float = 100.0) -> CapabilityRequest:
    return CapabilityRequest(
        "r1",
        SERVICES[service],
        window_start_ms=10 * HOUR_MS,
        window_end_ms=10 * HOUR_MS + slots * 900_000,
        now_ms=10 * HOUR_MS - lead_ms,
        demand_kw=(demand,) * slots,
    )


def by_id(result):
    return {a.asset_id: a for a in result.assignments}


def test_dynamic_ffr_three_generators_five_loads(backend):
    # 10 s product: G3 (off, 600 s start-up) and loads L3..L5 too slow. Reserve is ramp-limited:
    # G1 <= 2 kW/s x 10 s = 20, G2 <= 0.5 x 10 = 5; loads L1 + L2 = 20 -> 45 kW in each slot.
    # Slot 0 (G3 cannot start yet): G1 + G2 = 100 with r1 = 20 (p1 <= 80), r2 = 5 (p2 <= 45); cheapest p1 = 80.
    # Slot 1 (starts 900 s >= 600 s start-up): cheap G3 takes the rest above G1/G2 minimum: 20 / 10 / 70.
    r = evaluate_capability(gens_and_loads(), request("DYNAMIC_FFR"), backend=backend)
    assert r.feasible
    assert [s.capacity_kw for s in r.slots] == pytest.approx([45.0, 45.0])
    a = by_id(r)
    assert a["G1"].setpoint_kw == pytest.approx((80.0, 20.0))
    assert a["G2"].setpoint_kw == pytest.approx((20.0, 10.0))
    assert a["G3"].setpoint_kw == pytest.approx((0.0, 70.0))
    assert a["G1"].reserve_kw == pytest.approx((20.0, 20.0))
    assert a["G2"].reserve_kw == pytest.approx((5.0, 5.0))
    assert a["G3"].reserve_kw == (0.0, 0.0)
    assert dict(r.excluded) == {
        "G3": ExclusionReason.RESPONSE_TIME,
        "L3": ExclusionReason.RESPONSE_TIME,
        "L4": ExclusionReason.RESPONSE_TIME,
        "L5": ExclusionReason.RESPONSE_TIME,
    }
    assert sorted(r.coalition()) == ["G1", "G2", "L1", "L2"]
    # generation cost: (80 x 50k + 20 x 80k + 20 x 50k + 10 x 80k + 70 x 30k) x 0.25 h
    assert r.generation_cost_micro == 2_375_000
    # uncertainty: loads 20 kW x 0.8 / 1.2, generators firm
    assert r.slots[0].capacity_low_kw == pytest.approx(25 + 16)
    assert r.slots[0].capacity_high_kw == pytest.approx(25 + 24)


def test_static_ffr_more_loads_and_headroom_limited_generators(backend):
    # 30 s: loads L1..L3 = 30. Ramp caps G1 60, G2 15. Slot 0: headroom 150 - 100 = 50 -> 80 kW total,
    # cheapest split with r1 + r2 = 50: p2 >= 35 (r2 <= 15) -> p1 = 65, p2 = 35.
    # Slot 1: G3 on lets G1/G2 drop to minimum: r1 = 60, r2 = 15 -> 105 kW, G3 at 70.
    r = evaluate_capability(gens_and_loads(), request("STATIC_FFR"), backend=backend)
    assert [s.capacity_kw for s in r.slots] == pytest.approx([80.0, 105.0])
    assert r.capacity_kw == pytest.approx(80.0)
    a = by_id(r)
    assert a["G1"].setpoint_kw == pytest.approx((65.0, 20.0))
    assert a["G2"].setpoint_kw == pytest.approx((35.0, 10.0))
    assert a["G3"].setpoint_kw == pytest.approx((0.0, 70.0))


def test_lead_time_lets_slow_generator_start_for_every_slot(backend):
    r = evaluate_capability(gens_and_loads(), request("STATIC_FFR", lead_ms=HOUR_MS), backend=backend)
    assert [s.capacity_kw for s in r.slots] == pytest.approx([105.0, 105.0])
    assert by_id(r)["G3"].setpoint_kw == pytest.approx((70.0, 70.0))


def test_stor_counts_off_generator_that_starts_in_time(backend):
    # 20 min product: G3 off but 600 + 60 s <= 1200 s -> non-spinning reserve 200 kW in slot 0;
    # in slot 1 it may also run: the optimiser keeps the maximum reserve (all 5 loads = 45 kW with L5 at 100 %).
    r = evaluate_capability(gens_and_loads(), request("STOR", slots=1), backend=backend)
    # G1 + G2 cover 100 with headroom 50 (ramp caps 2400 / 600 not binding), G3 200, loads 50
    assert r.slots[0].capacity_kw == pytest.approx(50 + 200 + 50)
    assert not r.feasible and r.shortfall_reason == "BELOW_MIN_SIZE"  # STOR minimum 3 MW


def test_dispatch_infeasible_when_demand_exceeds_generation(backend):
    r = evaluate_capability(gens_and_loads(), request("STATIC_FFR", slots=1, demand=500.0), backend=backend)
    assert not r.feasible
    assert r.shortfall_reason == "DISPATCH_INFEASIBLE"


def test_down_regulation_from_pv_and_generators(backend):
    assets = [
        Asset(f"pv{i}", AssetKind.PV, p_max_kw=10, current_kw=10, response_time_s=2, directions=DOWN)
        for i in range(10)
    ]
    assets += gens_and_loads()[:2]
    svc = ServiceSpec("DOWN_FR", Direction.DOWN, 10, 30)
    r = evaluate_capability(
        assets, CapabilityRequest("d", svc, 0, 900_000, demand_kw=(100.0,)), backend=backend
    )
    # PV 100; G1/G2 down to minimum but ramp-limited: r1 <= 20, r2 <= 5 with p1 + p2 = 100 -> 25
    assert r.slots[0].capacity_kw == pytest.approx(125.0)
    assert "L1" not in {a.asset_id for a in r.assignments}


# HL-UC03 LL-UC02 acceptance portfolio (usecases.md)
def spec_portfolio():
    a = [
        Asset(
            f"bess{i}",
            AssetKind.BESS,
            p_max_kw=50,
            energy_kwh=100,
            soc_pct=60,
            soc_min_pct=10,
            response_time_s=0.5,
            directions=UPDOWN,
        )
        for i in range(5)
    ]
    a += [Asset(f"evse{i}", AssetKind.EVSE, p_max_kw=22, current_kw=22, response_time_s=5) for i in range(3)]
    a += [
        Asset(f"pv{i}", AssetKind.PV, p_max_kw=10, current_kw=10, response_time_s=2, directions=DOWN)
        for i in range(10)
    ]
    a += [
        Asset(
            f"diesel{i}",
            AssetKind.GENERATOR,
            p_max_kw=100,
            is_on=False,
            start_up_time_s=120,
            marginal_cost_micro_per_kwh=250_000,
        )
        for i in range(2)
    ]
    a += [
        Asset(f"load{i}", AssetKind.CURTAILABLE_LOAD, p_max_kw=5, current_kw=5, response_time_s=30)
        for i in range(20)
    ]
    return a


@pytest.mark.parametrize(
    ("spec", "capacity", "feasible", "reasons"),
    [
        (
            ServiceSpec("EFR-like", Direction.UP, 1, 15),
            250.0,
            True,
            {"evse": "RESPONSE_TIME", "load": "RESPONSE_TIME", "diesel": "RESPONSE_TIME", "pv": "DIRECTION"},
        ),
        (
            ServiceSpec("static-FFR-like", Direction.UP, 30, 30),
            416.0,
            True,
            {"diesel": "RESPONSE_TIME", "pv": "DIRECTION"},
        ),
        (ServiceSpec("STOR-like", Direction.UP, 1200, 120, 3000), 491.0, False, {"pv": "DIRECTION"}),
    ],
)
def test_spec_acceptance_portfolio(spec, capacity, feasible, reasons, backend):
    slots = int(spec.min_duration_min // 15)
    r = evaluate_capability(
        spec_portfolio(), CapabilityRequest("x", spec, 0, slots * 900_000), backend=backend
    )
    assert r.capacity_kw == pytest.approx(capacity)
    assert r.feasible is feasible
    assert r.shortfall_reason == (None if feasible else "BELOW_MIN_SIZE")
    got = {aid.rstrip("0123456789"): str(reason) for aid, reason in r.excluded}
    assert got == reasons
