from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.flex.dispatch import catch_up_kw, ev_setpoint_a
from streams.flex.enrolment import EvCharger
from streams.flex.model import Direction
from streams.flex.offers import build_offer
from streams.flex.optimiser import Problem, optimise
from streams.flex.validation import Code, validate_acceptance
from tools.sim.flex_scenario import SLOT_MS, T0, flat_outlook, portfolio, reduce_request


def test_catch_up_setpoint():
    assert catch_up_kw(2.0, 0.0, T0 - 1, T0, T0 + SLOT_MS) == 2.0  # before the slot: the target
    # half-way with nothing delivered: twice the target for the remaining half
    assert catch_up_kw(2.0, 0.0, T0 + SLOT_MS // 2, T0, T0 + SLOT_MS) == pytest.approx(4.0)
    assert catch_up_kw(2.0, 2.0 * SLOT_MS, T0 + SLOT_MS // 2, T0, T0 + SLOT_MS) == pytest.approx(0.0)
    assert catch_up_kw(2.0, 0.0, T0 + SLOT_MS, T0, T0 + SLOT_MS) == 0.0


def test_ev_setpoint_for_flex():
    ev = EvCharger("ev", max_current_a=32, nominal_current_a=16, phases=1)
    assert ev_setpoint_a(ev, Direction.REDUCE, ev.power_kw(16)) == 0  # stop charging
    assert ev_setpoint_a(ev, Direction.REDUCE, ev.power_kw(6)) == 10
    assert ev_setpoint_a(ev, Direction.REDUCE, ev.power_kw(12)) == 7  # below 7 A is not allowed: 7 A
    assert ev_setpoint_a(ev, Direction.INCREASE, ev.power_kw(10)) == 26
    assert ev_setpoint_a(ev, Direction.INCREASE, 100.0) == 32


def test_acceptance_after_delivery_started_rejected():
    reg = portfolio(5)
    offer = build_offer(reduce_request(kw=3.0), reg.in_area("terni-1"), flat_outlook, T0 - 10)
    issues = validate_acceptance(offer, T0 + 1, reg, (), T0)
    assert [i.code for i in issues] == [Code.SLOT_IN_PAST]


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 4),
    st.data(),
)
def test_optimiser_invariants(n_p, n_s, data):
    kw = st.floats(0, 10, allow_nan=False)
    cap = np.array(data.draw(st.lists(st.lists(kw, min_size=n_s, max_size=n_s), min_size=n_p, max_size=n_p)))
    cost = np.array(
        data.draw(
            st.lists(st.lists(st.floats(1, 1000), min_size=n_s, max_size=n_s), min_size=n_p, max_size=n_p)
        )
    )
    req = np.array(data.draw(st.lists(st.floats(0, 50), min_size=n_s, max_size=n_s)))
    sol = optimise(Problem(tuple(map(str, range(n_p))), req, cap, cost))
    x = sol.allocation_kw
    assert (x >= 0).all() and (x <= cap + 0.001).all()
    assert (x.sum(axis=0) <= req + 0.001).all()  # never over-allocates
    # shortfall only when the portfolio is exhausted (up to W rounding)
    total_cap = cap.sum(axis=0)
    np.testing.assert_allclose(sol.shortfall_kw, np.maximum(req - total_cap, 0), atol=0.002 * n_p + 0.001)
