"""Pure tests of ForecastStream, the per-prosumer logic of the forecasts stage: event-time issuing, topic routing."""

from __future__ import annotations

from edream.serde import Serde
from streams.analytics.baselines import SLOT_MS
from streams.analytics.forecast_stream import ForecastStream

SERDE = Serde()
DAY0 = 1_795_392_000_000  # 2026-11-23T00:00Z (a Monday)


def interval(prosumer: str, start: int, import_wh: float, version: int = 1) -> bytes:
    rec = {
        "event_id": f"{prosumer}/{start}/{version}",
        "device_id": f"dev-{prosumer}",
        "prosumer_id": prosumer,
        "interval_start": start,
        "interval_end": start + SLOT_MS,
        "import_wh": import_wh,
        "export_wh": 0.0,
        "avg_kw": import_wh * 4 / 1000,
        "max_kw": import_wh * 4 / 1000,
        "samples": 180,
        "expected_samples": 180,
        "completeness": 1.0,
        "estimated": False,
        "method": "POWER_INTEGRATION",
        "version": version,
        "computed_at": start + SLOT_MS,
    }
    return SERDE.encode("IntervalEnergy", rec, "meter.intervals.15m.v1")


def decoded(out: list) -> list[tuple[str, str, dict]]:
    return [(t, k.decode(), *SERDE.decode(v, t)) for t, k, v in out]


def feed(proc, msgs: list[bytes]) -> list:
    out = []
    for m in msgs:
        out += proc.handle("meter.intervals.15m.v1", None, m, 0)
    return out


def test_forecasts_issue_on_first_interval_and_on_event_time_periods_only():
    fs = ForecastStream(SERDE)
    first = decoded(feed(fs, [interval("p1", DAY0, 250.0)]))
    grans = sorted({r["prediction_granularity"] for t, _, n, r in first if n == "Forecast"})
    assert grans == ["DAYAHEAD", "INTRA_DAY", "ONE_HOUR_AHEAD"]
    assert {r["issued_at"] for _, _, _, r in first} == {DAY0 + SLOT_MS}
    # a re-emitted (corrected) interval of the same slot does not advance event time: nothing issued
    assert feed(fs, [interval("p1", DAY0, 260.0, version=2)]) == []
    # the next slot enters a new 15-min period (hour-ahead) and a new 30-min period (intra-day), not a new day
    nxt = decoded(feed(fs, [interval("p1", DAY0 + SLOT_MS, 250.0)]))
    grans = sorted({r["prediction_granularity"] for t, _, n, r in nxt if n == "Forecast"})
    assert grans == ["INTRA_DAY", "ONE_HOUR_AHEAD"]


def test_forecast_accuracy_follows_actuals_and_routes_to_the_given_topics():
    msgs = [interval("p1", DAY0 + i * SLOT_MS, 200.0 + 10 * (i % 4)) for i in range(200)]
    a = ForecastStream(SERDE)
    out_a = feed(a, msgs)
    names = {SERDE.decode(v, t)[0] for t, _, v in out_a}
    assert names == {"Forecast", "ForecastAccuracy"}
    # renamed topics: the same records, on the given topics
    b_out = feed(ForecastStream(SERDE, forecast_topic="f", accuracy_topic="a"), msgs)
    assert [(k, v) for _, k, v in b_out] == [(k, v) for _, k, v in out_a]
    assert {t for t, _, _ in b_out} == {"f", "a"}
