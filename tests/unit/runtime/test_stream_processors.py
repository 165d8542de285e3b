"""Pure tests of the hosted stream processors: event-time issuing, replay determinism, snapshot round trips."""

from __future__ import annotations

import threading

from edream.paths import TOPOLOGY_FILE
from edream.serde import Serde
from edream.topology import load_topology
from streams.analytics.baseline_stream import BaselineStream
from streams.analytics.baselines import DAY_MS, SLOT_MS
from streams.analytics.forecast_stream import ForecastStream
from streams.hosting import HostedThread, run_loop, topic_names

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


def test_forecast_accuracy_follows_actuals_and_snapshot_replays_identically():
    msgs = [interval("p1", DAY0 + i * SLOT_MS, 200.0 + 10 * (i % 4)) for i in range(200)]
    a = ForecastStream(SERDE)
    out_a = feed(a, msgs)
    names = {SERDE.decode(v, t)[0] for t, _, v in out_a}
    assert names == {"Forecast", "ForecastAccuracy"}
    # snapshot after 100, restore, continue: same outputs as the uninterrupted run
    b = ForecastStream(SERDE, forecast_topic="f", accuracy_topic="a")
    b_out = feed(b, msgs[:100])
    c = ForecastStream.restore(SERDE, b.snapshot(), forecast_topic="f", accuracy_topic="a")
    b_out += feed(c, msgs[100:])
    assert [(k, v) for _, k, v in b_out] == [(k, v) for _, k, v in out_a]
    assert {t for t, _, _ in b_out} == {"f", "a"}


def test_baselines_day_ahead_after_enough_history_and_event_days_excluded():
    bs = BaselineStream(SERDE)
    msgs = [interval("p1", DAY0 + i * SLOT_MS, 250.0) for i in range(96 * 12)]
    out = decoded(feed(bs, msgs))
    day_ahead = [r for _, _, _, r in out if r["version"] == 1]
    adjusted = [r for _, _, _, r in out if r["version"] == 2]
    assert day_ahead and adjusted
    assert all(r["isp_start"] >= r["computed_at"] for r in day_ahead + adjusted)  # issued ahead of the slot
    assert all(abs(r["baseline_kw"] - 1.0) < 1e-9 for r in day_ahead)  # 250 Wh per 15 min = 1 kW
    # restart from a snapshot continues identically
    again = BaselineStream.restore(SERDE, bs.snapshot())
    nxt = [interval("p1", DAY0 + (96 * 12 + i) * SLOT_MS, 250.0) for i in range(96)]
    assert feed(again, nxt) == feed(BaselineStream.restore(SERDE, bs.snapshot()), nxt)


def test_flex_orders_mark_event_days():
    bs = BaselineStream(SERDE)
    order = {"status": "ACTIVE", "allocations": [{"prosumer_id": "p1", "slot_start": DAY0 + 3 * DAY_MS}]}
    bs.service.observe_order(order)
    assert bs.service.event_days["p1"] == {(DAY0 + 3 * DAY_MS) // DAY_MS}


def test_topic_names_map_suffixed_topology_names_to_canonical(tmp_path):
    topo = load_topology(TOPOLOGY_FILE)
    names = topic_names(topo)
    assert names["meter.intervals.15m.v1"] == "meter.intervals.15m.v1"
    assert names["forecast.accuracy.v1"] == "forecast.accuracy.v1"

    class T:
        def __init__(self, name: str):
            self.name = name

    class Topo:
        topics = [T("meter.intervals.15m.v1.ab12"), T("flex.orders.v1")]

    assert topic_names(Topo()) == {
        "meter.intervals.15m.v1": "meter.intervals.15m.v1.ab12",
        "flex.orders.v1": "flex.orders.v1",
    }


class RunStyle:
    def __init__(self):
        self.ran = threading.Event()
        self.done = False

    def run(self, stop: threading.Event) -> None:
        self.ran.set()
        stop.wait()
        self.done = True


def test_hosted_thread_runs_a_run_style_service_until_stopped():
    svc = RunStyle()
    hosted = HostedThread("t", lambda: svc, retry_s=0.0)
    hosted.start()
    assert svc.ran.wait(10)
    hosted.stop()
    assert svc.done and not hosted.thread.is_alive()


def test_run_loop_returns_without_building_when_already_stopped():
    stop = threading.Event()
    stop.set()
    built = []
    run_loop(lambda: built.append(1), stop)
    assert built == []
