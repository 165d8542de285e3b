"""The simulated community: deterministic, plausible profiles and valid Measurement records."""

from __future__ import annotations

import fastavro

from edream.avro_schemas import load_schema
from edream.demo.community import HOUR_MS, Community

NOON = 1_795_435_200_000  # 2026-11-23T12:00:00Z
EVENING = NOON + 7 * HOUR_MS  # 19:00 UTC


def test_same_seed_same_readings_and_different_seed_differs():
    a = list(Community(10, seed=3).readings(NOON, NOON + 60_000))
    b = list(Community(10, seed=3).readings(NOON, NOON + 60_000))
    c = list(Community(10, seed=4).readings(NOON, NOON + 60_000))
    assert a == b
    assert [r["value"] for r in a] != [r["value"] for r in c]


def test_readings_cover_every_meter_on_the_grid_with_unique_ids_and_valid_avro():
    com = Community(7)
    recs = list(com.readings(NOON - 1, NOON + 30_000))
    assert len(recs) == 7 * 7  # grid times NOON, NOON+5 s, ..., NOON+30 s
    assert len({r["event_id"] for r in recs}) == len(recs)
    assert {r["ts"] for r in recs} == set(range(NOON, NOON + 30_001, 5_000))
    schema = load_schema("Measurement")
    for r in recs:
        fastavro.validate(r, schema, raise_errors=True)


def test_pv_makes_exporters_at_noon_and_evening_is_the_peak():
    com = Community(50)
    pv = [p for p in com.prosumers if p.pv_kwp >= 5 and not p.ev_kw]
    assert pv, "the default community has PV owners"
    assert all(p.net_kw(NOON) < 0 for p in pv), "large PV exports at noon"
    total_noon = sum(p.net_kw(NOON) for p in com.prosumers)
    total_evening = sum(p.net_kw(EVENING) for p in com.prosumers)
    assert total_evening > total_noon + 20  # kW
    assert any(p.chp_kw for p in com.prosumers), "some prosumers sell around the clock"


def test_expected_energy_is_the_integral_of_the_profile():
    p = Community(5).prosumers[0]
    wh = Community(5).expected_wh(p, NOON, NOON + 15 * 60_000)
    kw = [p.net_kw(NOON + m * 60_000 + 30_000) for m in range(15)]
    assert abs(wh - sum(kw) * 1000 / 60) < 1e-6


def test_override_replaces_the_metered_power():
    com = Community(3)
    recs = list(com.readings(NOON, NOON + 5_000, override=lambda pid, ts, kw: 1.234))
    assert [r["value"] for r in recs] == [1234.0] * 3


def test_coarser_history_step():
    com = Community(2)
    recs = list(com.readings(NOON, NOON + 120_000, step_ms=30_000))
    assert sorted({r["ts"] for r in recs}) == [NOON + k * 30_000 for k in range(1, 5)]
