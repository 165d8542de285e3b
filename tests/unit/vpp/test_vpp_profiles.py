from datetime import UTC, datetime

import numpy as np
import pytest

from streams.vpp.profiles import (
    FEATURE_DIM,
    SLOT_MS,
    DayType,
    LoadProfiler,
    feature_weights,
    normalise_day,
    roughness_of_day,
    split_features,
)

MONDAY_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)  # 2024-01-01 is a Monday
DAY_MS = 86_400_000


def _day(level: float = 100.0) -> np.ndarray:
    e = np.full(96, level)
    e[76:84] = 4 * level  # 19-21 h peak
    return e


def test_normalise_day_mean_abs_is_one_and_keeps_export_sign():
    e = np.array([1.0, -3.0, 2.0, 0.0])
    s = normalise_day(e)
    assert s is not None
    assert np.abs(s).mean() == pytest.approx(1.0)
    assert s[1] < 0
    assert normalise_day(np.zeros(4)) is None


def test_day_folds_only_when_all_96_slots_present_and_duplicates_are_idempotent():
    p = LoadProfiler()
    e = _day()
    out = []
    for i in range(95):
        out += p.add("a", MONDAY_MS + i * SLOT_MS, e[i])
        out += p.add("a", MONDAY_MS + i * SLOT_MS, e[i])  # re-delivery
    assert out == []
    (prof,) = p.add("a", MONDAY_MS + 95 * SLOT_MS, e[95])
    assert prof.day_type == DayType.WEEKDAY
    assert prof.days_used == 1
    assert prof.daily_wh == pytest.approx(e.sum())
    assert prof.peak_w == pytest.approx(400 * 4)
    assert prof.as_of_ms == MONDAY_MS + DAY_MS
    assert np.asarray(prof.shape) == pytest.approx(e / e.mean())
    # the same day delivered again does not count twice
    assert p.add("a", MONDAY_MS, e[0]) == []
    assert p.add_day("a", MONDAY_MS, e) == []
    assert p.days_used("a") == 1


def test_running_mean_and_day_types():
    p = LoadProfiler(window_days=2)
    for d in range(7):
        p.add_day("a", MONDAY_MS + d * DAY_MS, _day(100.0 * (d + 1)))
    wd = p.profile("a", DayType.WEEKDAY)
    we = p.profile("a", DayType.WEEKEND)
    assert wd is not None and we is not None
    assert (wd.days_used, we.days_used) == (5, 2)
    # window 2: exponential mean with weight 1/2 after the first two days (Mon..Fri levels 100..500)
    expected = 100.0
    for level in (200, 300, 400, 500):
        expected += (level - expected) / 2
    assert wd.daily_wh == pytest.approx(_day(expected).sum())
    assert we.daily_wh == pytest.approx((_day(600).sum() + _day(700).sum()) / 2)


def test_incomplete_day_expires_after_grace():
    p = LoadProfiler(grace_days=1)
    for i in range(50):
        p.add("a", MONDAY_MS + i * SLOT_MS, 1.0)
    p.add_day("a", MONDAY_MS + 3 * DAY_MS, _day())
    # late completion of the expired Monday is ignored
    out = [x for i in range(50, 96) for x in p.add("a", MONDAY_MS + i * SLOT_MS, 1.0)]
    assert out == []
    assert p.days_used("a") == 1


def test_features_need_enough_days():
    p = LoadProfiler()
    for d in range(6):
        p.add_day("a", MONDAY_MS + d * DAY_MS, _day())
    assert p.features("a") is None  # 5 weekdays + 1 weekend day
    p.add_day("a", MONDAY_MS + 6 * DAY_MS, _day(50.0))
    f = p.features("a")
    assert f is not None and f.shape == (FEATURE_DIM,) == (199,)
    weekday, weekend, _ = split_features(f)
    # weekend half is scaled by weekend/weekday energy: (100 + 50) / 2 / 100 = 0.75
    assert weekend == pytest.approx(weekday * 0.75)


def test_roughness_of_day():
    assert roughness_of_day(np.full(96, 5.0)) == 0.0
    e = np.tile([1.0, 3.0], 48)  # mean 2, every step |2|
    assert roughness_of_day(e) == pytest.approx(1.0)
    assert roughness_of_day(np.zeros(96)) == 0.0


def test_descriptors_of_a_hand_made_fortnight():
    """Office-like week: weekdays 100/400 Wh slots (08-18 h), Saturday half, Sunday quarter of a weekday."""
    p = LoadProfiler()
    office = np.full(96, 100.0)
    office[32:72] = 400.0
    weekday_levels = [1.0, 1.0, 1.0, 1.0, 2.0]  # Friday doubled: day-to-day variation
    for week in range(2):
        for d in range(7):
            scale = weekday_levels[d] if d < 5 else (0.5 if d == 5 else 0.25)
            p.add_day("o", MONDAY_MS + (7 * week + d) * DAY_MS, office * scale)
    d = p.descriptors("o")
    assert d is not None
    weekday_wh = office.sum() * np.mean(weekday_levels)  # cumulative mean over 10 weekdays
    assert d.saturday_ratio == pytest.approx(0.5 * office.sum() / weekday_wh)
    assert d.sunday_ratio == pytest.approx(0.25 * office.sum() / weekday_wh)
    levels = np.array(weekday_levels * 2) * office.sum()
    assert d.daily_cv == pytest.approx(levels.std() / levels.mean())
    # every weekday has the same shape: base = 100 / mean(office), load factor = mean / mean daily peak
    assert d.base_share == pytest.approx(100.0 / office.mean())
    assert d.load_factor == pytest.approx(
        office.mean() * np.mean(weekday_levels) / (400.0 * np.mean(weekday_levels))
    )
    assert d.roughness == pytest.approx(roughness_of_day(office))
    # 06-10 h: 8 slots at 100, 8 at 400; 17-22 h: 4 slots at 400, 16 at 100
    m, e = (8 * 100 + 8 * 400) / 16, (4 * 400 + 16 * 100) / 20
    assert d.morning_evening_balance == pytest.approx((m - e) / (m + e))
    f = p.features("o")
    assert f is not None
    assert split_features(f)[2] == pytest.approx(
        {
            "saturday_ratio": d.saturday_ratio,
            "sunday_ratio": d.sunday_ratio,
            "load_factor": d.load_factor,
            "base_share": d.base_share,
            "morning_evening_balance": d.morning_evening_balance,
            "roughness": d.roughness,
            "daily_cv": d.daily_cv,
        }
    )


def test_features_do_not_depend_on_consumption_level():
    small, large = LoadProfiler(), LoadProfiler()
    rng = np.random.default_rng(0)
    for d in range(14):
        day = _day() * rng.uniform(0.5, 1.5, 96)
        small.add_day("a", MONDAY_MS + d * DAY_MS, day)
        large.add_day("a", MONDAY_MS + d * DAY_MS, day * 37.0)
    assert large.features("a") == pytest.approx(small.features("a"))


def test_feature_weights_share_shape_weight_over_slots():
    w = feature_weights(4.0, 2.0)
    assert w.shape == (FEATURE_DIM,)
    assert (w[:96] ** 2).sum() == pytest.approx(4.0)
    assert (w[96:192] ** 2).sum() == pytest.approx(2.0)
    assert w[192:] == pytest.approx(np.ones(7))


def test_local_timezone_slots():
    p = LoadProfiler(tz="Europe/Rome")
    local_midnight = MONDAY_MS - 3_600_000  # 2024-01-01 00:00 CET
    (prof,) = p.add_day("a", local_midnight, _day())
    assert prof.day_type == DayType.WEEKDAY
    with pytest.raises(ValueError):
        p.add_day("a", MONDAY_MS, _day())  # UTC midnight is 01:00 local
