"""One integration rule: a flex slot's delivered energy equals the interval energy of the same readings.

The same readings (net power, kW; the interval aggregator gets them as P_ACTIVE in W) go through
:class:`streams.flex.verification.VerificationEngine` and :class:`streams.analytics.intervals.IntervalAggregator`;
the 15-minute slot and interval coincide. With baseline 0 and INCREASE, delivered flexibility is the actual
energy itself; with a REDUCE order the delivered energy is baseline x measured time - actual energy, the measured
time being the interval's completeness.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.analytics.intervals import IntervalAggregator, IntervalConfig
from streams.energy_integration import (
    MS_PER_HOUR,
    WindowIntegrator,
    cut_segment,
    integrate_power,
    split_trapezoid,
)
from streams.flex.model import Direction
from streams.flex.orders import FlexOrder, OrderAllocation
from streams.flex.verification import VerificationEngine

T = 1_800_000_000_000 // 900_000 * 900_000  # slot and interval start, UTC epoch ms
SLOT = 900_000
S = 1000
LATENESS = 120_000  # both close the window only after every reading below arrived


def order(direction: Direction, baseline_kw: float) -> FlexOrder:
    return FlexOrder(
        "o1", "off", "req", 1, direction, "ACTIVE", (OrderAllocation("p", T, 2.0, baseline_kw),), 15, T - 1
    )


def measurement(ts: int, kw: float) -> dict:
    return {
        "event_id": f"c/m1/P_ACTIVE/TOTAL/{ts}",
        "device_id": "m1",
        "prosumer_id": "p",
        "quantity": "P_ACTIVE",
        "phase": "TOTAL",
        "value": kw * 1000.0,
        "unit": "W",
        "ts": ts,
        "seq": ts,
        "connector_id": "c",
        "ingest_ts": ts,
    }


def both(
    arrivals: list[tuple[int, float]], direction: Direction = Direction.INCREASE, baseline_kw: float = 0.0
):
    """(FINAL deviation of the slot, IntervalEnergy record of the interval) for readings in arrival order."""
    engine = VerificationEngine(allowed_lateness_ms=LATENESS)
    engine.apply_order(order(direction, baseline_kw), now=T - SLOT)
    agg = IntervalAggregator(IntervalConfig(allowed_lateness_ms=LATENESS), now_ms=lambda: T)
    for ts, kw in arrivals:
        engine.on_reading("p", ts, kw)
        agg.process(measurement(ts, kw))
    [final] = engine.advance_to(T + SLOT)
    [interval] = [r for r in agg.flush() if r["interval_start"] == T]
    return final, interval


def assert_same_energy(final, interval, direction=Direction.INCREASE, baseline_kw=0.0):
    slot_h = SLOT / MS_PER_HOUR
    actual_kwh = (interval["import_wh"] - interval["export_wh"]) / 1000.0
    measured_h = interval["completeness"] * slot_h
    delivered_kwh = direction.delivered_kw(baseline_kw * measured_h, actual_kwh)
    assert final.delivered_kw * slot_h == pytest.approx(delivered_kwh, abs=1e-6)  # FINAL kW has 6 decimals
    assert final.readings == interval["samples"]


def irregular(seed: int, start: int = T - 60 * S, end: int = T + SLOT + 60 * S) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    out, ts = [], start
    while ts <= end:
        out.append((ts, round(rng.uniform(-3.0, 6.0), 3)))  # net kW, negative = export
        ts += rng.randint(1, 40) * S
    return out


def late(readings: list[tuple[int, float]], seed: int, within_ms: int = 60 * S) -> list[tuple[int, float]]:
    """Arrival order: each reading delayed by up to ``within_ms``, so many arrive after newer ones."""
    rng = random.Random(seed)
    return [r for _, r in sorted((ts + rng.randint(0, within_ms), (ts, kw)) for ts, kw in readings)]


CASES = {
    "irregular spacing, neighbours outside the slot": irregular(1),
    "a 400-s gap (longer than the 300-s limit)": [
        (ts, kw) for ts, kw in irregular(2) if not T + 200 * S < ts < T + 600 * S
    ],
    "readings exactly on both slot boundaries": [(T + k * 5 * S, 3.0 + (k % 4)) for k in range(181)],
    "first reading after the slot start, last before its end": [(T + k * 7 * S, 2.5) for k in range(1, 128)],
    "late and out-of-order readings": late(irregular(3), seed=3),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize(("direction", "baseline_kw"), [(Direction.INCREASE, 0.0), (Direction.REDUCE, 5.0)])
def test_slot_delivered_energy_equals_interval_energy(name, direction, baseline_kw):
    final, interval = both(CASES[name], direction, baseline_kw)
    assert interval["method"] == "POWER_INTEGRATION"
    assert_same_energy(final, interval, direction, baseline_kw)


def test_cases_exercise_what_they_name():
    _, gap = both(CASES["a 400-s gap (longer than the 300-s limit)"])
    assert gap["completeness"] < 0.75
    _, edges = both(CASES["readings exactly on both slot boundaries"])
    assert (
        edges["completeness"] == 1.0 and edges["samples"] == 180
    )  # the reading at T + 900 s is the next slot's
    # 3 + k % 4 kW, trapezoid: the mean of each pair of neighbours; 45 full cycles of 4 segments
    assert edges["import_wh"] == pytest.approx(
        sum((3 + k % 4 + 3 + (k + 1) % 4) / 2 * 5 for k in range(180)) / 3.6
    )
    _, short = both(CASES["first reading after the slot start, last before its end"])
    assert short["completeness"] == pytest.approx((127 - 1) * 7 / 900)


def test_replaced_reading_counts_with_its_last_value():
    readings = [(T + k * 10 * S, 4.0) for k in range(91)]
    arrivals = readings[:40] + [(T + 400 * S, 40.0)] + readings[40:]  # 40 kW at 400 s, replaced by 4 kW
    final, interval = both(arrivals)
    assert_same_energy(final, interval)
    assert final.delivered_kw == pytest.approx(4.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-100, 1_000), st.floats(-10, 10, allow_nan=False).map(lambda x: round(x, 3))),
        min_size=0,
        max_size=60,
    ),
    st.randoms(use_true_random=False),
)
def test_streaming_equals_batch_whatever_the_arrival_order(raw, rnd):
    """WindowIntegrator over readings in any order (with replacements) equals integrate_power over the final set."""
    arrivals = [(T + t * S, kw) for t, kw in raw]
    rnd.shuffle(arrivals)
    final: dict[int, float] = {}
    w = WindowIntegrator(T, T + SLOT)
    for ts, kw in arrivals:
        w.add(ts, kw)
        final[ts] = kw
    times = sorted(final)
    batch = integrate_power(times, [final[t] for t in times], T, T + SLOT)
    assert w.net_kwh == pytest.approx(batch.net_kwh, abs=1e-9)
    assert w.covered_ms == batch.covered_ms
    assert w.samples == batch.samples


def test_cut_segment_interpolates_at_the_edges_and_drops_gaps():
    assert cut_segment(T - 10 * S, 0.0, T + 10 * S, 2.0, T, T + SLOT, 300 * S) == (T, 1.0, T + 10 * S, 2.0)
    assert cut_segment(T, 0.0, T + 400 * S, 2.0, T, T + SLOT, 300 * S) is None  # a gap
    assert cut_segment(T - 20 * S, 1.0, T, 1.0, T, T + SLOT, 300 * S) is None  # ends on the start: outside


def test_split_trapezoid_zero_crossing():
    # 2 kW -> -1 kW over 60 s: zero after 40 s; import 2 kW x 40 s / 2, export 1 kW x 20 s / 2
    imp, exp = split_trapezoid(2.0, -1.0, 60 / 3600)
    assert imp == pytest.approx(40 / 3600)
    assert exp == pytest.approx(10 / 3600)
    assert split_trapezoid(-0.5, -0.5, 0.5) == (0.0, 0.25)
