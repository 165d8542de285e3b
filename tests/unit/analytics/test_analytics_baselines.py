"""Baselines for a known history, computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from fastavro.validation import validate

from edream.avro_schemas import load_schema
from streams.analytics.baselines import (
    SLOTS_PER_DAY,
    BaselineConfig,
    baseline_records,
    candidate_days,
    day_baseline,
    day_kinds,
)

D = 10  # target day index


def flat(values: list[float]) -> np.ndarray:
    """One row per day, each day constant."""
    return np.repeat(np.asarray(values, dtype=float)[:, None], SLOTS_PER_DAY, axis=1)


def zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=int)


def test_x_of_y_variants():
    load = flat([9, 9, 9, 9, 9, 9, 9, 5, 1, 3, 0])  # days 7, 8, 9 are the last three before day 10
    kind, exc = zeros(11), np.zeros(11, bool)
    avg = day_baseline(load, D, kind, exc, BaselineConfig("AVERAGE_Y", x=3, y=3))
    assert avg.kw == pytest.approx(np.full(SLOTS_PER_DAY, 3.0))
    assert sorted(avg.source_days) == [7, 8, 9]
    high = day_baseline(load, D, kind, exc, BaselineConfig("HIGH_X_OF_Y", x=2, y=3))
    assert high.kw == pytest.approx(np.full(SLOTS_PER_DAY, 4.0))  # mean of 5 and 3
    assert high.source_days == [7, 9]
    mid = day_baseline(load, D, kind, exc, BaselineConfig("MID_X_OF_Y", x=1, y=3))
    assert mid.kw == pytest.approx(np.full(SLOTS_PER_DAY, 3.0))


def test_event_days_weekends_and_incomplete_days_are_skipped():
    load = flat([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0])
    load[6, :20] = np.nan  # coverage below 90 %
    kind = zeros(11)
    kind[8] = 1  # a weekend day
    exc = np.zeros(11, bool)
    exc[9] = True  # event day
    cfg = BaselineConfig("AVERAGE_Y", x=2, y=2)
    assert candidate_days(load, D, kind, exc, cfg) == [7, 5]
    assert day_baseline(load, D, kind, exc, cfg).kw[0] == pytest.approx(7.0)  # (8 + 6) / 2


def test_additive_adjustment_rolling_window_and_cap():
    load = flat([2.0] * 10 + [2.3])
    kind, exc = zeros(11), np.zeros(11, bool)
    cfg = BaselineConfig("AVERAGE_Y", x=5, y=5, adjust="additive", cap=0.2)
    bl = day_baseline(load, D, kind, exc, cfg)
    # slot 0: window = slots 80..91 of the previous day (2.0 vs 2.0) -> no adjustment
    assert bl.kw[0] == pytest.approx(2.0)
    # slot 10: window = previous-day slots 90..95 (2.0) + target slots 0..5 (2.3): mean 2.15 -> +0.15
    assert bl.adjustment_kw[10] == pytest.approx(0.15)
    # slot >= 16: window inside the target day -> +0.3 (cap is 0.4)
    assert bl.kw[50] == pytest.approx(2.3)
    unadjusted = day_baseline(load, D, kind, exc, cfg, same_day=False)
    assert unadjusted.kw[50] == pytest.approx(2.0)
    load[D] = 3.0
    assert day_baseline(load, D, kind, exc, cfg).kw[50] == pytest.approx(2.4)  # capped at 0.2 * 2.0


def test_uncapped_and_shrunk_additive_adjustment():
    load = flat([2.0] * 10 + [3.0])  # the target day runs 1 kW above its look-back
    kind, exc = zeros(11), np.zeros(11, bool)
    uncapped = BaselineConfig("AVERAGE_Y", x=5, y=5, adjust="additive", cap=math.inf)
    assert day_baseline(load, D, kind, exc, uncapped).kw[50] == pytest.approx(3.0)  # a +-20 % cap gives 2.4
    half = BaselineConfig(
        "AVERAGE_Y", x=5, y=5, adjust="additive", cap=math.inf, adjust_width_slots=48, weight=0.5
    )
    bl = day_baseline(load, D, kind, exc, half)
    assert bl.adjustment_kw[60] == pytest.approx(0.5)  # window slots 8..55, all in the target day
    # slot 20: window = previous-day slots 68..95 (2.0, deviation 0) + target slots 0..15 (+1.0): 16/48 of it
    assert bl.adjustment_kw[20] == pytest.approx(0.5 * 16 / 48)
    assert half.params.endswith(",cap=inf,lead=4,width=48,weight=0.5")
    with pytest.raises(ValueError, match="weight"):
        BaselineConfig(adjust="additive", weight=0.0)
    with pytest.raises(ValueError, match="cap"):
        BaselineConfig(adjust="additive", cap=-0.1)


def test_multiplicative_adjustment_and_anchor():
    load = flat([2.0] * 10 + [2.2])
    kind, exc = zeros(11), np.zeros(11, bool)
    cfg = BaselineConfig("AVERAGE_Y", x=5, y=5, adjust="multiplicative", cap=0.2)
    assert day_baseline(load, D, kind, exc, cfg).kw[40] == pytest.approx(2.2)
    load[D, 40:] = 5.0  # event load after slot 40 must not leak into an event anchored at slot 40
    anchored = day_baseline(load, D, kind, exc, cfg, anchor_slot=40)
    assert anchored.kw[40:] == pytest.approx(np.full(SLOTS_PER_DAY - 40, 2.2))
    load[D] = 3.0
    assert day_baseline(load, D, kind, exc, cfg).kw[40] == pytest.approx(2.4)  # ratio 1.5 clipped to 1.2


def test_comparative_day_picks_the_matching_morning():
    load = flat([3.0 if j % 2 else 1.0 for j in range(11)])
    load[D, :] = np.nan
    load[D, :48] = 3.0  # this morning looks like the odd days
    kind, exc = zeros(11), np.zeros(11, bool)
    comp = day_baseline(load, D, kind, exc, BaselineConfig("COMPARATIVE_DAY", x=4, y=4, comparative_k=1))
    assert comp.kw[60] == pytest.approx(3.0)
    avg = day_baseline(load, D, kind, exc, BaselineConfig("AVERAGE_Y", x=4, y=4))
    assert avg.kw[60] == pytest.approx(2.0)


def test_no_history_gives_none_and_bad_config_raises():
    assert day_baseline(flat([1.0]), 0, zeros(1), np.zeros(1, bool), BaselineConfig()) is None
    with pytest.raises(ValueError):
        BaselineConfig("HIGH_X_OF_Y", x=5, y=4)
    with pytest.raises(ValueError):
        BaselineConfig("NOPE")


def test_day_kinds_and_records_match_contract():
    monday = 1_700_438_400_000  # 2023-11-20 00:00 UTC, a Monday
    kinds = day_kinds([monday + i * 86_400_000 for i in range(7)], holidays={2})
    assert kinds.tolist() == [0, 0, 1, 0, 0, 1, 1]
    load = flat([1.0] * 11)
    cfg = BaselineConfig("HIGH_X_OF_Y", x=4, y=5, adjust="additive")
    bl = day_baseline(load, D, zeros(11), np.zeros(11, bool), cfg)
    dates = [f"2023-11-{i + 10:02d}" for i in range(11)]
    recs = baseline_records("p1", monday, dates, bl, cfg, computed_at=monday, version=2)
    assert len(recs) == SLOTS_PER_DAY
    assert recs[1]["event_id"] == f"p1/{monday + 900_000}/2"
    assert recs[0]["source_days"] == dates[6:10][::-1]  # ties keep recency order
    schema = load_schema("Baseline")
    assert all(validate(r, schema) for r in recs)
