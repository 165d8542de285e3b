"""The demo's day of interval history: valid records that end where the raw readings begin."""

from __future__ import annotations

import pytest

from edream.demo.community import Community
from edream.demo.meter_history import SLOT_MS, interval_history
from streams.validation.interval import check_interval

NOW = 1_796_558_400_000  # 2026-12-06 12:00 UTC


def test_a_day_of_valid_intervals_per_prosumer_ending_where_the_readings_begin():
    community = Community(5, seed=1)
    readings_from = NOW - 3_600_000 + 7 * 60_000  # not on a quarter hour
    recs = list(interval_history(community, readings_from, 24, computed_at_ms=NOW))
    assert len(recs) == 5 * 96
    assert all(check_interval(r, NOW) == [] for r in recs), [check_interval(r, NOW) for r in recs][:1]
    assert max(r["interval_end"] for r in recs) == readings_from // SLOT_MS * SLOT_MS
    assert len({r["event_id"] for r in recs}) == len(recs)
    per_prosumer = [r["interval_start"] for r in recs if r["prosumer_id"] == "prosumer-000"]
    assert per_prosumer == sorted(per_prosumer) and len(per_prosumer) == 96


def test_energies_integrate_the_metered_power_import_and_export_apart():
    community = Community(50, seed=1)
    pv = next(p for p in community.prosumers if p.pv_kwp)
    recs = list(interval_history(community, NOW, 24, computed_at_ms=NOW))
    noon = next(
        r for r in recs if r["prosumer_id"] == pv.prosumer_id and r["interval_start"] == NOW - 900_000
    )  # 11:45-12:00 UTC
    kw = [community.metered_kw(pv, noon["interval_start"] + 30_000 + k * 60_000) for k in range(15)]
    assert noon["avg_kw"] == pytest.approx(sum(kw) / 15, abs=1e-3)
    assert noon["import_wh"] - noon["export_wh"] == pytest.approx(sum(kw) / 15 * 250, abs=0.01)
    assert noon["max_kw"] == pytest.approx(max(kw), abs=1e-3)


def test_no_history_asked_none_sent():
    assert list(interval_history(Community(3), NOW, 0, computed_at_ms=NOW)) == []
