from __future__ import annotations

import numpy as np
import pytest

from streams.flex.optimiser import Problem, optimise, round_to_watts


def problem(req, cap, cost, act=None, penalty=None) -> Problem:
    cap = np.array(cap, dtype=float)
    return Problem(
        tuple(f"p{i}" for i in range(cap.shape[0])),
        np.array(req, dtype=float),
        cap,
        np.array(cost, dtype=float),
        None if act is None else np.array(act, dtype=float),
        penalty,
    )


@pytest.mark.parametrize("backend", ["highspy", "pyomo"])
def test_merit_order_cover(backend):
    # slot 0 needs 5 kW: cheapest p1 (cap 3) then p0 (cap 4) -> 3 + 2; slot 1 needs 1 kW: p0 cheaper there
    p = problem([5, 1], [[4, 4], [3, 3]], [[20, 10], [10, 30]])
    s = optimise(p, backend)
    assert s.allocation_kw.tolist() == [[2.0, 1.0], [3.0, 0.0]]
    assert s.shortfall_kw.tolist() == [0.0, 0.0]
    assert s.cost_micro == 2 * 20 + 3 * 10 + 1 * 10


@pytest.mark.parametrize("backend", ["highspy", "pyomo"])
def test_infeasible_reports_shortfall(backend):
    s = optimise(problem([10, 2], [[3, 3], [4, 0]], [[1, 1], [1, 1]]), backend)
    assert s.allocation_kw.tolist() == [[3.0, 2.0], [4.0, 0.0]]
    assert s.shortfall_kw.tolist() == [3.0, 0.0]


@pytest.mark.parametrize("backend", ["highspy", "pyomo"])
def test_activation_cost_prefers_fewer_prosumers(backend):
    # 3 kW needed; two cheap small ones (1.5 kW each at 10) vs one big at 12; activation 100 each
    p = problem([3], [[1.5], [1.5], [3.0]], [[10], [10], [12]], act=[100, 100, 100])
    s = optimise(p, backend)
    assert s.allocation_kw[:, 0].tolist() == [0.0, 0.0, 3.0]
    assert s.cost_micro == 3 * 12 + 100
    lp = optimise(problem([3], [[1.5], [1.5], [3.0]], [[10], [10], [12]]), backend)
    assert lp.allocation_kw[:, 0].tolist() == [1.5, 1.5, 0.0]


def test_backends_agree_on_random_instance():
    rng = np.random.default_rng(7)
    cap = rng.uniform(0, 5, (60, 6))
    cap[rng.random(cap.shape) < 0.3] = 0
    cost = rng.uniform(100, 900, cap.shape)
    p = problem(rng.uniform(10, 80, 6), cap, cost)
    a, b = optimise(p, "highspy"), optimise(p, "pyomo")
    assert abs(a.cost_micro - b.cost_micro) <= 2
    assert (a.allocation_kw <= cap + 0.001).all()  # < 1 W rounding
    np.testing.assert_allclose(a.allocation_kw.sum(axis=0) + a.shortfall_kw, p.requested_kw, atol=1e-3)


def test_round_to_watts_keeps_totals_and_caps():
    x = np.array([[0.3334, 0.1], [0.3333, 0.2], [0.3333, 0.3]])
    cap = np.array([[0.3334, 1], [0.3330, 1], [0.333, 1]])  # caps in whole W: 334, 333, 333
    r = round_to_watts(x, cap)
    assert r.sum(axis=0).round(3).tolist() == [1.0, 0.6]
    assert (r <= cap + 0.001).all() and r[:, 0].tolist() == [0.334, 0.333, 0.333]


def test_bad_shapes_rejected():
    with pytest.raises(ValueError):
        problem([1, 1], [[1]], [[1]])
    with pytest.raises(ValueError):
        problem([-1], [[1]], [[1]])
