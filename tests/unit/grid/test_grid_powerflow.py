"""Power flow of the mapped simbench grid: power-grid-model against the pandapower reference over a full day,
non-converging scenarios flagged (never raised), and the congestion forecast of the demo day."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from streams.grid.background import with_background
from streams.grid.config import load_grid_config
from streams.grid.congestion import forecast_congestion, forecast_matrix
from streams.grid.model import build_grid_model
from streams.grid.pgm_engine import PgmEngine
from streams.grid.pp_engine import PandapowerEngine


def test_power_grid_model_agrees_with_pandapower_over_a_full_day(demo_model, demo_day):
    """Acceptance: loading within 0.5 %-points, voltages within 0.1 % on all 96 quarter hours."""
    _, inj = demo_day
    pgm = PgmEngine(demo_model).run(inj)
    ref = PandapowerEngine(demo_model).run(inj)
    assert pgm.converged.all() and ref.converged.all()
    assert np.nanmax(pgm.loading_percent) > 140  # the day really is congested (midday reverse flow)
    assert np.abs(pgm.loading_percent - ref.loading_percent).max() <= 0.5
    assert np.abs(pgm.vm_pu / ref.vm_pu - 1.0).max() <= 0.001
    assert pgm.vm_pu.shape == (96, len(demo_model.net.bus))


def test_a_non_converging_slot_is_flagged_not_raised(demo_model, demo_day):
    slots, inj = demo_day
    bad = inj.take(np.arange(4))
    bad.prosumer_kw[2, :] = 50_000.0  # 2.5 MW on a 160 kVA village grid: no solution
    for engine in (PgmEngine(demo_model), PandapowerEngine(demo_model)):
        res = engine.run(bad)
        assert res.converged.tolist() == [True, True, False, True], engine.name
        assert np.isnan(res.loading_percent[2]).all() and np.isfinite(res.loading_percent[[0, 1, 3]]).all()
    out = forecast_congestion(demo_model, PgmEngine(demo_model), bad, slots[:4])
    flagged = out[2]
    assert not flagged.converged and flagged.loading_percent is None and not flagged.overloaded
    assert flagged.overload_kw == 0.0 and flagged.sensitivity == {}


def test_demo_day_congestion_midday_reverse_flow_and_evening_ev_peak(demo_model, demo_day):
    slots, inj = demo_day
    out = forecast_congestion(demo_model, PgmEngine(demo_model), inj, slots)
    assert len(out) == 96 and {s.congestion_point_id for s in out} == {"demo-community/transformer"}
    hot = [s for s in out if s.overloaded]
    hours = sorted({(s.slot_start - slots[0]) // 3_600_000 for s in hot})
    assert set(hours) >= {10, 11, 12, 18} and not set(hours) & {0, 1, 2, 3, 4, 5, 22, 23}
    for s in out:
        assert s.converged and (bool(s.sensitivity) == s.overloaded)
        assert s.overload_kw == pytest.approx(max(0.0, s.loading_percent - 100.0) * 1.6)  # 160 kVA
        assert s.undervoltage_buses == s.overvoltage_buses == 0 and 0.9 < s.vm_min_pu <= s.vm_max_pu < 1.1
    noon = next(s for s in hot if (s.slot_start - slots[0]) // 3_600_000 == 11)
    evening = next(s for s in hot if (s.slot_start - slots[0]) // 3_600_000 == 18)
    assert len(noon.sensitivity) == 50
    # 100 % / 160 kVA = 0.625 %-points per kW: exporting more (consuming less) loads the transformer at noon
    assert all(-0.7 < v < -0.55 for v in noon.sensitivity.values())
    assert all(0.55 < v < 0.7 for v in evening.sensitivity.values())


def test_voltage_band_violations_are_counted_per_zone(long_feeder):
    """1 km cables: 60 kW at the far end pulls LV1 to 0.89 and LV2 to 0.80 pu; the line's zone is LV2 only."""
    model, engine = long_feeder
    kw = forecast_matrix(model, {"near": [0.0, 0.0], "far": [5.0, 60.0]}, 2)
    out = forecast_congestion(model, engine, with_background(model, kw, np.array([0, 900_000])), [0, 900_000])
    trafo, line = out[:2], out[2:]
    assert [s.undervoltage_buses for s in trafo] == [0, 2]  # LV1 and LV2 (LV0 stays at 1.0)
    assert [s.undervoltage_buses for s in line] == [0, 1]  # LV2 only
    assert line[1].vm_min_pu < 0.9


def test_simbench_style_taps_count_in_both_engines(tmp_path, tiny_net):
    """A tap position without a tap changer type (simbench in pandapower 3) is applied by both engines alike."""
    f = tmp_path / "grid.yaml"
    prosumers = [{"prosumer_id": "far", "bus": "LV2"}]
    cps = [{"id": "trafo", "area_id": "a", "asset": {"kind": "trafo", "index": 0}}]
    vm = {}
    for tap in (0, -2):
        net = tiny_net(tmp_path / f"tap{tap}.json", tap_pos=tap)
        f.write_text(yaml.safe_dump({"network": str(net), "congestion_points": cps, "prosumers": prosumers}))
        model = build_grid_model(load_grid_config(f))
        inj = with_background(model, np.array([[20.0]]), np.array([0]))
        pgm, ref = PgmEngine(model).run(inj), PandapowerEngine(model).run(inj)
        assert np.abs(pgm.vm_pu / ref.vm_pu - 1.0).max() < 1e-4
        vm[tap] = ref.vm_pu[0, 1]  # LV0
    assert vm[-2] - vm[0] == pytest.approx(
        0.05, abs=0.005
    )  # two 2.5 % steps on the HV side raise the LV voltage


def test_sensitivity_on_the_whole_grid_and_on_the_zone(tmp_path, tiny_net):
    """ "grid" sensitivities are the whole network's finite difference; "zone" ones (slack at the line's supplying
    bus) miss that bus's voltage drop: on this weak feeder (LV1 at ~0.9 pu) they come out up to 20 % lower."""
    net = tiny_net(tmp_path / "half.json", km=0.5)
    f = tmp_path / "grid.yaml"
    cps = [
        {
            "id": "far-line",
            "area_id": "a",
            "asset": {"kind": "line", "index": "L2"},
            "max_loading_percent": 50,
        }
    ]
    prosumers = [{"prosumer_id": "mid", "bus": "LV1"}, {"prosumer_id": "far", "bus": "LV2"}]
    f.write_text(yaml.safe_dump({"network": str(net), "congestion_points": cps, "prosumers": prosumers}))
    model = build_grid_model(load_grid_config(f))
    engine = PgmEngine(model)
    kw = np.array([[30.0, 80.0], [30.0, 81.0]])  # the whole-grid finite difference: +1 kW at LV2
    whole = engine.run(with_background(model, kw, np.array([0, 0])))
    expected = whole.loading_percent[1, 0] - whole.loading_percent[0, 0]
    one = with_background(model, kw[:1], np.array([0]))
    (grid,) = forecast_congestion(model, engine, one, [0], sensitivity="grid")
    (zone,) = forecast_congestion(model, engine, one, [0], sensitivity="zone")
    assert grid.overloaded and set(grid.sensitivity) == set(zone.sensitivity) == {"far"}  # "mid" is upstream
    assert grid.sensitivity["far"] == pytest.approx(expected, rel=1e-6)
    assert 0.8 * expected < zone.sensitivity["far"] < expected


def test_zone_sensitivity_is_exact_behind_the_demo_transformer(demo_model, demo_day):
    """The demo transformer's supplying bus is the slack itself: both methods agree."""
    slots, inj = demo_day
    rows = np.arange(72, 76)  # 18:00-19:00, EV peak
    grid = forecast_congestion(
        demo_model, PgmEngine(demo_model), inj.take(rows), slots[rows], sensitivity="grid"
    )
    zone = forecast_congestion(
        demo_model, PgmEngine(demo_model), inj.take(rows), slots[rows], sensitivity="zone"
    )
    hot = [(g, z) for g, z in zip(grid, zone, strict=True) if g.overloaded]
    assert hot
    for g, z in hot:
        assert set(g.sensitivity) == set(z.sensitivity) and len(g.sensitivity) == 50
        assert all(z.sensitivity[p] == pytest.approx(v, rel=1e-3) for p, v in g.sensitivity.items())
