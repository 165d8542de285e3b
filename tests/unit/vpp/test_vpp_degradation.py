"""Degradation: a synthetic -0.8 %/year injected into pvlib-simulated PV data (clouds, temperature, clipping,
outages, missing values) must be recovered within +-0.2 %/year."""

from datetime import UTC, datetime

import numpy as np
import pytest

from streams.vpp.degradation import DegradationConfig, estimate_degradation, slot_mask, yoy_rates
from streams.vpp.pv_model import PvSystem, dc_power_w, expected_clearsky_w
from tools.sim.pv_synthetic import simulate_pv

SYSTEM = PvSystem(latitude=48.14, longitude=11.58, dc_capacity_w=10_000, ac_limit_w=8_500)
START_MS = int(datetime(2021, 1, 1, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture(scope="module", params=[0, 1])
def pv(request):
    return simulate_pv(SYSTEM, START_MS, years=3, rd_per_year=-0.008, seed=request.param)


def test_sensor_based_rd_recovered(pv):
    expected = dc_power_w(SYSTEM, pv.poa_wm2, pv.temp_air_c)
    est = estimate_degradation(pv.times_ms, pv.power_w, expected, SYSTEM.dc_capacity_w, SYSTEM.ac_limit_w)
    assert est.rd_pct_per_year == pytest.approx(-0.8, abs=0.2)
    assert est.ci_low <= est.rd_pct_per_year <= est.ci_high
    assert est.ci_high - est.ci_low < 0.4
    assert est.pairs > 300


def test_clear_sky_rd_recovered_without_irradiance_sensor(pv):
    expected = expected_clearsky_w(SYSTEM, pv.times_ms)
    cfg = DegradationConfig(clear_sky=True)
    est = estimate_degradation(
        pv.times_ms, pv.power_w, expected, SYSTEM.dc_capacity_w, SYSTEM.ac_limit_w, cfg
    )
    assert est.rd_pct_per_year == pytest.approx(-0.8, abs=0.2)
    assert est.ci_low <= est.rd_pct_per_year <= est.ci_high
    assert est.pairs > 100


def test_no_degradation_gives_rd_near_zero():
    pv = simulate_pv(SYSTEM, START_MS, years=2.2, rd_per_year=0.0, seed=5)
    expected = dc_power_w(SYSTEM, pv.poa_wm2, pv.temp_air_c)
    est = estimate_degradation(pv.times_ms, pv.power_w, expected, SYSTEM.dc_capacity_w, SYSTEM.ac_limit_w)
    assert abs(est.rd_pct_per_year) < 0.2


def test_slot_mask_drops_low_light_outage_clipping_and_missing():
    cfg = DegradationConfig()
    expected = np.array([500.0, 5000.0, 5000.0, 9000.0, 5000.0, 6000.0])
    actual = np.array([480.0, 0.0, 4900.0, 8500.0, np.nan, 5800.0])
    mask = slot_mask(actual, expected, 10_000, 8_500, cfg)
    # low light, outage, ok, clipped, missing, ok
    assert mask.tolist() == [False, False, True, False, False, True]


def test_yoy_pairs_days_a_year_apart():
    import pandas as pd

    pr = pd.Series([1.0, 0.99, 0.98], index=[10, 375, 741])
    rates = yoy_rates(pr, tolerance_days=3)
    assert rates == pytest.approx([-1.0, (0.98 / 0.99 - 1) * 100 * 365 / 366])


def test_too_little_data_raises():
    pv = simulate_pv(SYSTEM, START_MS, years=0.5, seed=0)
    with pytest.raises(ValueError, match="year-on-year"):
        estimate_degradation(pv.times_ms, pv.power_w, dc_power_w(SYSTEM, pv.poa_wm2, pv.temp_air_c), 10_000)
