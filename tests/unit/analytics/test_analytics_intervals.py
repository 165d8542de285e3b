"""Interval aggregation with hand-computed expectations (gaps, rollover, late data, silent meter)."""

from __future__ import annotations

import pytest

from streams.analytics.intervals import IntervalAggregator, IntervalConfig
from streams.analytics.registers import register_delta

T0 = 1_699_999_200_000  # a UTC epoch ms multiple of 15 minutes
S = 1000  # one second in ms
CLOCK = 1_800_000_000_000


def meas(ts: int, value: float, quantity: str = "P_ACTIVE", device: str = "m1", prosumer: str | None = "p1"):
    unit = "W" if quantity.startswith("P_") else "Wh"
    return {
        "event_id": f"c/{device}/{quantity}/TOTAL/{ts}",
        "device_id": device,
        "prosumer_id": prosumer,
        "quantity": quantity,
        "phase": "TOTAL",
        "value": value,
        "unit": unit,
        "ts": ts,
        "seq": ts,
        "connector_id": "c",
        "ingest_ts": ts,
    }


def agg(**kw) -> IntervalAggregator:
    return IntervalAggregator(IntervalConfig(**kw), now_ms=lambda: CLOCK)


def feed(a: IntervalAggregator, events) -> list[dict]:
    out: list[dict] = []
    for e in events:
        out.extend(a.process(e).intervals)
    return out


def test_register_delta_rollover_and_reset():
    assert register_delta(999_999_990.0, 40.0, 1e9) == pytest.approx(50.0)
    assert register_delta(5000.0, 4000.0, 1e9) == 0.0  # reset/glitch, not a rollover
    assert register_delta(10.0, 25.0, None) == 15.0


def test_constant_power_full_window_closes_on_watermark():
    a = agg(expected_period_ms=5 * S)
    out = feed(a, [meas(T0 + i * 5 * S, 1000.0) for i in range(0, 181)])  # up to and including T0+900 s
    assert out == []  # watermark is T0+870 s: not closed yet
    out = feed(a, [meas(T0 + 930 * S, 1000.0)])
    assert len(out) == 1
    r = out[0]
    assert r["interval_start"] == T0 and r["interval_end"] == T0 + 900 * S
    assert r["import_wh"] == pytest.approx(250.0)
    assert r["export_wh"] == 0.0
    assert r["avg_kw"] == pytest.approx(1.0)
    assert r["samples"] == 180 and r["expected_samples"] == 180
    assert r["completeness"] == pytest.approx(1.0)
    assert r["method"] == "POWER_INTEGRATION" and r["estimated"] is False
    assert r["version"] == 1 and r["event_id"] == f"m1/{T0}/1"
    assert r["prosumer_id"] == "p1" and r["computed_at"] == CLOCK


def test_boundary_interpolation_and_gap():
    # ramp 0 W at T0-30 s -> 1200 W at T0+30 s: inside part 600->1200 W for 30 s = 7.5 Wh
    # then 1200 W flat to T0+300 s (270 s = 90 Wh); gap to T0+720 s (420 s > max_gap 300 s: not integrated);
    # 1200 W from T0+720 s to T0+900 s (180 s = 60 Wh)
    a = agg(expected_period_ms=60 * S, max_gap_ms=300 * S)
    ev = [meas(T0 - 30 * S, 0.0), meas(T0 + 30 * S, 1200.0)]
    ev += [meas(T0 + t * S, 1200.0) for t in (90, 150, 210, 270, 300, 720, 780, 840, 900)]
    feed(a, ev)
    out = [r for r in a.advance_to(T0 + 930 * S) if r["interval_start"] == T0]
    assert len(out) == 1
    r = out[0]
    assert r["import_wh"] == pytest.approx(7.5 + 90 + 60)
    assert r["completeness"] == pytest.approx((300 + 180) / 900)
    assert r["samples"] == 9  # T0+30 .. T0+840
    assert r["max_kw"] == pytest.approx(1.2)
    assert r["avg_kw"] == pytest.approx((7.5 + 150) / (480 / 3600) / 1000)
    assert r["estimated"] is False  # 60 s segments are the nominal period here


def test_short_gap_is_bridged_and_marked_estimated():
    a = agg(expected_period_ms=10 * S, max_gap_ms=300 * S)
    feed(a, [meas(T0, 400.0), meas(T0 + 120 * S, 400.0), meas(T0 + 900 * S, 400.0)])
    # second segment is 780 s > max_gap: only the first 120 s count; first segment 120 s > 25 s -> bridged
    (r,) = [r for r in a.advance_to(T0 + 930 * S) if r["interval_start"] == T0]
    assert r["import_wh"] == pytest.approx(400 * 120 / 3600)
    assert r["estimated"] is True
    assert r["completeness"] == pytest.approx(120 / 900)


def test_register_rollover_inside_window():
    a = agg(expected_period_ms=450 * S, max_gap_ms=900 * S)
    feed(
        a,
        [
            meas(T0, 999_999_900.0, "E_IMPORT"),
            meas(T0 + 450 * S, 999_999_990.0, "E_IMPORT"),
            meas(T0 + 900 * S, 40.0, "E_IMPORT"),
            meas(T0, 10.0, "E_EXPORT"),
            meas(T0 + 900 * S, 16.0, "E_EXPORT"),
            meas(T0 + 100 * S, 99999.0, "P_ACTIVE"),  # power is ignored when registers cover the window
        ],
    )
    (r,) = [r for r in a.advance_to(T0 + 930 * S) if r["interval_start"] == T0]
    assert r["method"] == "REGISTER_DELTA"
    assert r["import_wh"] == pytest.approx(90.0 + 50.0)
    assert r["export_wh"] == pytest.approx(6.0)
    assert r["completeness"] == pytest.approx(1.0)
    assert r["avg_kw"] == pytest.approx((140.0 - 6.0) / 0.25 / 1000)


def test_register_segment_straddling_boundary_is_split():
    a = agg(expected_period_ms=600 * S, max_gap_ms=600 * S)
    out = feed(a, [meas(T0 - 300 * S, 1000.0, "E_IMPORT"), meas(T0 + 300 * S, 1600.0, "E_IMPORT")])
    out = {r["interval_start"]: r for r in out + a.advance_to(T0 + 2000 * S)}
    assert out[T0 - 900 * S]["import_wh"] == pytest.approx(300.0)
    assert out[T0]["import_wh"] == pytest.approx(300.0)
    assert out[T0]["completeness"] == pytest.approx(300 / 900)


def test_silent_meter_closes_by_timer_and_by_other_meters_watermark():
    a = agg(expected_period_ms=60 * S, allowed_lateness_ms=30 * S)
    feed(a, [meas(T0 + t * S, 600.0) for t in range(0, 601, 60)])  # m1 silent after T0+600 s
    assert a.advance_to(T0 + 929 * S) == []  # T0+929 s - 30 s lateness < window end
    (r,) = a.advance_to(T0 + 930 * S)
    assert r["import_wh"] == pytest.approx(600 * 600 / 3600)
    assert r["completeness"] == pytest.approx(600 / 900)
    assert r["samples"] == 11

    b = agg(expected_period_ms=60 * S, allowed_lateness_ms=30 * S)
    feed(b, [meas(T0 + t * S, 600.0) for t in range(0, 601, 60)])
    out = feed(b, [meas(T0 + 930 * S, 5.0, device="m2", prosumer="p2")])
    assert [(r["device_id"], r["interval_start"]) for r in out] == [("m1", T0)]


def test_late_correction_reemits_with_higher_version():
    a = agg(expected_period_ms=60 * S, max_gap_ms=300 * S, allowed_lateness_ms=30 * S)
    feed(a, [meas(T0 + t * S, 1200.0) for t in (0, 60, 120, 180, 240, 300, 660, 720, 780, 840, 900)])
    (v1,) = [r for r in a.advance_to(T0 + 930 * S) if r["interval_start"] == T0]
    assert v1["import_wh"] == pytest.approx(1200 * 540 / 3600)  # 300..660 is a gap (360 s > max_gap)
    assert v1["completeness"] == pytest.approx(540 / 900)
    # a late reading inside the closed window at 480 s fills the gap: the window settles until the meter moves on
    assert a.process(meas(T0 + 480 * S, 0.0)).intervals == []
    (v2,) = a.process(meas(T0 + 960 * S, 1200.0)).intervals  # the meter's next reading, past the window's end
    assert v2["version"] == 2 and v2["event_id"] == f"m1/{T0}/2"
    # 300->480: ramp 1200->0 W for 180 s = 30 Wh; 480->660: 30 Wh; plus the 540 s at 1200 W = 180 Wh
    assert v2["import_wh"] == pytest.approx(180.0 + 30 + 30)
    assert v2["completeness"] == pytest.approx(1.0)
    assert v2["samples"] == v1["samples"] + 1
    # replaying the same late reading changes nothing and emits nothing
    assert a.process(meas(T0 + 480 * S, 0.0)).status == "duplicate"


def test_a_quiet_meters_correction_is_emitted_once_the_ticks_are_settle_ms_past_it():
    a = agg(expected_period_ms=60 * S, allowed_lateness_ms=30 * S, settle_ms=2 * S)
    feed(a, [meas(T0 + t * S, 1200.0) for t in range(0, 901, 60) if t != 480])
    (v1,) = a.advance_to(T0 + 930 * S)
    assert a.process(meas(T0 + 480 * S, 600.0)).intervals == []  # after the tick of 930 s
    assert a.advance_to(T0 + 931 * S) == []  # the meter may go on correcting
    assert a.advance_to(T0 + 931 * S) == []  # the same tick again (another worker's): nothing
    (v2,) = a.advance_to(T0 + 932 * S)
    assert (v2["interval_start"], v2["version"]) == (T0, 2)
    assert v2["import_wh"] == pytest.approx(v1["import_wh"] - 2 * 0.5 * 600 * 60 / 3600)
    assert a.advance_to(T0 + 933 * S) == [] and a.settling == {}


def test_a_buffer_flushed_after_the_wall_clock_closed_its_windows_gives_one_complete_record_per_window():
    """A meter (or its connector) uploads its last hour of 30-s readings when the ticks have long passed it, as the
    demo's meters do on start: one record per window, complete, not one per reading from an empty first one."""
    a = agg(expected_period_ms=30 * S, allowed_lateness_ms=30 * S)
    now = T0 + 3_600_000
    a.advance_to(now)
    out = feed(a, [meas(T0 + 15 * S + k * 30 * S, 1200.0) for k in range(120)])  # T0+15 s .. now-15 s
    out += a.advance_to(now + 30 * S)  # the last window was still open: it closes 30 s (the lateness) after
    assert [(r["interval_start"], r["version"]) for r in out] == [(T0 + k * 900 * S, 1) for k in range(4)]
    wh = [
        r["import_wh"] for r in out
    ]  # the readings start 15 s after the first window and end 15 s before the hour
    assert wh == pytest.approx([1200 * 885 / 3600, 300.0, 300.0, 1200 * 885 / 3600])


def test_too_late_and_ignored():
    a = agg(correction_horizon_ms=900 * S, allowed_lateness_ms=0)
    feed(a, [meas(T0 + 10_000 * S, 1.0)])
    assert a.process(meas(T0, 1.0)).status == "too_late"
    assert a.process(meas(T0 + 10_000 * S, 230.0, "VOLTAGE_LN")).status == "ignored"
    assert a.stats["too_late"] == 1 and a.stats["ignored"] == 1


def test_snapshot_restore_continues_identically():
    events = [meas(T0 + t * S, 100.0 + t) for t in range(0, 1800, 15)]
    ref = agg(expected_period_ms=15 * S)
    ref_out = feed(ref, events) + ref.flush()
    a = agg(expected_period_ms=15 * S)
    part = feed(a, events[:70])
    b = IntervalAggregator.restore(a.snapshot(), now_ms=lambda: CLOCK)
    part += feed(b, events[70:]) + b.flush()
    assert part == ref_out
    assert len(ref_out) == 2


def test_output_matches_avro_contract():
    from fastavro.validation import validate

    from edream.avro_schemas import load_schema

    a = agg(expected_period_ms=60 * S)
    out = feed(a, [meas(T0 + t * S, -300.0 + t) for t in range(0, 1900, 60)]) + a.flush()
    assert len(out) == 3
    schema = load_schema("IntervalEnergy")
    for r in out:
        assert validate(r, schema)
