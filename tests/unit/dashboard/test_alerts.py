"""The console's alert rules (pure): stage states, lag trend, shortfalls, anchoring delay, dependencies."""

from __future__ import annotations

from edream.dashboard.alerts import (
    LagTrend,
    anchoring_alert,
    dependency_alerts,
    shortfall_alerts,
    stage_alerts,
    stage_key,
)


def _stage(status: str, lag: int | None = 0, error: str | None = None) -> dict:
    return {"stage": "intervals", "worker_id": "h:1", "status": status, "lag": lag, "last_error": error}


def test_down_and_retrying_stages_alert_up_and_starting_do_not():
    names = [a.name for a in stage_alerts([_stage("DOWN"), _stage("RETRYING", error="KafkaError: x")], set())]
    assert names == ["EdreamStageDown", "EdreamStageRetrying"]
    assert stage_alerts([_stage("UP"), _stage("STARTING")], set()) == []
    (a,) = stage_alerts([_stage("RETRYING", error="KafkaError: x")], set())
    assert (a.severity, a.subject, a.detail) == ("warning", "intervals@h:1", "KafkaError: x")


def test_lag_growing_needs_a_rise_without_a_drop_over_the_whole_window_above_the_minimum():
    trend = LagTrend(growing_for_ms=30_000, min_lag=100)
    key = stage_key(_stage("UP"))
    for i, lag in enumerate([50, 120, 200, 200, 350]):
        trend.observe(key, i * 10_000, lag)
    assert trend.growing(key)  # 0..40 s: 120 -> 350 without a drop
    assert stage_alerts([_stage("UP", 350)], {key})[0].name == "EdreamStageLagGrowing"
    trend.observe(key, 50_000, 300)
    assert not trend.growing(key)  # it went down
    young = LagTrend(growing_for_ms=30_000, min_lag=100)
    young.observe(key, 0, 500)
    young.observe(key, 10_000, 900)
    assert not young.growing(key)  # watched for 10 s only
    small = LagTrend(growing_for_ms=30_000, min_lag=100)
    for i in range(5):
        small.observe(key, i * 10_000, 10 * i)
    assert not small.growing(key)  # below the minimum
    small.observe(key, 40_000, None)  # no lag reported: ignored
    small.observe(key, 40_000, 5)  # not newer: ignored
    assert not small.growing(key)


def test_shortfalls_above_the_threshold_alert_per_order():
    rows = [
        {"order_id": "o1", "slot_ms": 1, "shortfall_kw": 2.0},
        {"order_id": "o2", "slot_ms": 1, "shortfall_kw": 0.2},
    ]
    (a,) = shortfall_alerts(rows, threshold_kw=0.5)
    assert (a.name, a.subject) == ("EdreamFlexShortfall", "o1") and "2.00 kW short" in a.detail


def test_anchoring_behind_only_beyond_the_allowed_delay():
    assert anchoring_alert(None, 60_000) == [] and anchoring_alert(60_000, 60_000) == []
    (a,) = anchoring_alert(180_000, 60_000)
    assert a.name == "EdreamAnchoringBehind" and "3.0 min" in a.detail


def test_dependencies_down_are_critical():
    (a,) = dependency_alerts({"chain": {"up": False, "detail": "ConnectError"}, "clickhouse": {"up": True}})
    assert (a.name, a.severity, a.subject, a.detail) == (
        "EdreamDependencyDown",
        "critical",
        "chain",
        "ConnectError",
    )
