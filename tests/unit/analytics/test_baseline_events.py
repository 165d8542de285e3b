"""Event-style DR baselines: adjustment window without leakage, asymmetric caps, shrunk adjustments, event
scoring."""

from __future__ import annotations

import numpy as np
import pytest

from streams.analytics.baseline_events import (
    EventPreset,
    EventWindow,
    evaluate_events,
    event_baseline,
    window_slots,
)
from streams.analytics.baselines import day_kinds

MONDAY = 1_700_438_400_000
DAY_MS = 86_400_000


def test_window_uses_only_meter_intervals_that_ended_before_its_end():
    ev = EventWindow(68, 12)  # 17:00-20:00
    np.testing.assert_array_equal(
        window_slots(ev, EventPreset("p", window_h=3, lead_h=1), 1), np.arange(52, 64)
    )
    # 15 minutes lead on hourly meters: the 16:00-17:00 hour is not over at 16:45, so it stays out
    np.testing.assert_array_equal(
        window_slots(ev, EventPreset("p", window_h=3, lead_h=0.25), 4), np.arange(55, 64)
    )
    # a window before midnight reaches into the previous day (negative offsets)
    assert window_slots(EventWindow(4, 4), EventPreset("p", window_h=2, lead_h=0), 1)[0] == -4


def _grid(days: int, rng=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    load = np.ones((days, 96))
    if rng is not None:
        load = load * rng.lognormal(0, 0.3, (days, 1)) * rng.lognormal(0, 0.1, (days, 96))
    return load, day_kinds(MONDAY + np.arange(days) * DAY_MS), np.zeros(days, dtype=bool)


def test_hourly_data_of_an_unfinished_hour_never_moves_the_baseline():
    load, kind, excl = _grid(21)
    d = 14  # a Monday
    preset = EventPreset("p", adjust="multiplicative", window_h=3, lead_h=0.25, cap_down=None, cap_up=None)
    before = event_baseline(load, d, kind, excl, preset, EventWindow(), native_slots=4)
    load[d, 64:68] = 50.0  # the 16:00 hour (forward-filled): only known at 17:00, the event start
    after = event_baseline(load, d, kind, excl, preset, EventWindow(), native_slots=4)
    np.testing.assert_array_equal(before, after)
    load[d, 60:64] = 3.0  # the 15:00 hour is over by 16:45: it counts (3 of the 9 window quarter hours)
    moved = event_baseline(load, d, kind, excl, preset, EventWindow(), native_slots=4)
    np.testing.assert_allclose(moved, before * (5 + 4 * 3) / 9)  # slots 55-59 at 1, 60-63 at 3


@pytest.mark.parametrize(
    ("adjust", "cap_down", "cap_up", "expected", "weight"),
    [
        ("multiplicative", 0.2, 0.2, 1.2, 1.0),  # symmetric cap clips the +50 % day
        ("multiplicative", 0.2, 0.6, 1.5, 1.0),  # asymmetric cap lets it through
        ("additive", 0.2, 0.2, 1.2, 1.0),
        ("additive", None, None, 1.5, 1.0),
        ("none", 0.2, 0.2, 1.0, 1.0),
        ("additive", None, None, 1.25, 0.5),  # half the deviation
        ("multiplicative", 0.2, 0.2, 1.1, 0.5),  # half the capped change
    ],
)
def test_adjustment_and_its_caps(adjust, cap_down, cap_up, expected, weight):
    load, kind, excl = _grid(21)
    load[14, 52:64] = 1.5  # the window runs 50 % above the look-back days
    preset = EventPreset("p", adjust=adjust, cap_down=cap_down, cap_up=cap_up, weight=weight)
    np.testing.assert_allclose(event_baseline(load, 14, kind, excl, preset, EventWindow()), expected)


def test_event_scoring_counts_working_days_and_excludes_event_days():
    rng = np.random.default_rng(4)
    load, kind, excl = _grid(42, rng)
    excl[[15, 16]] = True
    r = evaluate_events(load, kind, excl, EventPreset("p", adjust="multiplicative"))
    working = int(np.sum((kind == 0) & ~excl)) - int(np.sum(kind[:14] == 0))
    assert r["events"] == working
    assert abs(r["nmbe"]) < 0.1 and 0 < r["cv_rmse"] < 0.5
    # a day-level factor is what the same-day adjustment corrects: it beats the plain 10 of 10
    plain = evaluate_events(load, kind, excl, EventPreset("p"))
    assert r["cv_rmse"] < plain["cv_rmse"]


def test_a_weight_outside_zero_to_one_is_refused():
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="weight must be in"):
            EventPreset("p", adjust="additive", weight=bad)


def test_a_window_reaching_before_the_day_before_is_refused_not_wrapped_into_the_event_day():
    """48 h before a 17:00 event would start two days back; numpy's negative indexing once wrapped it into the
    event day's own later slots (the event hours included), and such a preset scored better than possible."""
    ev = EventWindow(68, 12)
    assert window_slots(ev, EventPreset("p", window_h=40, lead_h=1), 1)[0] == -96
    with pytest.raises(ValueError, match="before the day before"):
        window_slots(ev, EventPreset("p", window_h=48, lead_h=1), 1)
    load, kind, excluded = _grid(21)
    with pytest.raises(ValueError, match="before the day before"):
        event_baseline(load, 20, kind, excluded, EventPreset("p", adjust="additive", window_h=48), ev)


def test_the_stage_default_is_the_half_additive_preset_evaluated_on_events():
    """The baselines stage's default, anchored at an event's start, gives the CBL the event-style evaluation
    scores as "10 of 10, half additive over 12 h" (quarter-hour meters, complete data)."""
    from streams.analytics.baseline_events import PRESETS
    from streams.analytics.baselines import RECOMMENDED, SLOTS_PER_DAY, day_baseline

    rng = np.random.default_rng(5)
    days = 30
    load = rng.lognormal(0.0, 0.4, (days, SLOTS_PER_DAY))
    load[-1] *= 1.3  # the event day runs above its look-back
    kind = day_kinds([MONDAY + i * DAY_MS for i in range(days)])
    excluded = np.zeros(days, dtype=bool)
    preset = next(p for p in PRESETS if p.name == "10 of 10, half additive over 12 h")
    event = EventWindow(68, 12)
    d = days - 1
    expected = event_baseline(load, d, kind, excluded, preset, event)
    stage = day_baseline(load, d, kind, excluded, RECOMMENDED, anchor_slot=event.start_slot)
    assert stage.adjustment_kw[68] > 0.05  # the adjustment is there
    assert stage.kw[68:80] == pytest.approx(expected, rel=1e-12)
