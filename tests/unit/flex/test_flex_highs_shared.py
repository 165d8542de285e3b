"""The flex optimiser and the VPP capability solver share one process (the platform worker): HiGHS keeps a
process-wide thread scheduler, so neither may pin a different thread count than the other one initialised."""

from __future__ import annotations

from streams.flex.offers import build_offer
from streams.vpp.assets import SERVICES
from streams.vpp.capability import CapabilityRequest, evaluate_capability
from tools.sim.flex_scenario import T0, flat_outlook, portfolio, reduce_request
from tools.sim.vpp_portfolio import random_portfolio


def test_flex_offer_after_a_vpp_capability_solve_in_the_same_process():
    req = CapabilityRequest("r", SERVICES["STATIC_FFR"], T0, T0 + 30 * 60_000)
    assert evaluate_capability(random_portfolio(50, seed=0), req).solver_status == "optimal"
    offer = build_offer(reduce_request(kw=30.0), portfolio(20).in_area("terni-1"), flat_outlook, T0 - 60_000)
    assert offer.status == "FULL"
