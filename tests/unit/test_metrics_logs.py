"""Prometheus helper metrics and correlation ids in the JSON logs."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import generate_latest

from edream.correlation import correlated, from_headers, headers_with
from edream.logs import configure_logging, get_logger
from edream.metrics import METRIC_NAMES, process_metrics


def test_standard_metrics_are_exposed_with_their_names():
    m = process_metrics()
    m.events_in.labels("worker", "t").inc(3)
    m.observe_event_time("worker", "t", event_ms=1_000, now_ms=3_500)
    with pytest.raises(ValueError), m.timed("worker", "decode"):
        raise ValueError("bad")
    text = generate_latest(m.registry).decode()
    assert 'edream_events_in_total{component="worker",topic="t"} 3.0' in text
    assert 'edream_errors_total{component="worker",error="ValueError",stage="decode"} 1.0' in text
    assert 'edream_event_lag_seconds_sum{component="worker",topic="t"} 2.5' in text
    assert 'edream_processing_seconds_count{component="worker",stage="decode"} 1.0' in text
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_carry_the_correlation_id(capsys, restore_logging):
    configure_logging("INFO")
    log = get_logger("edream.test")
    with correlated("abc123", topic="flex.orders.v1"):
        log.info("handled", n=2)
        logging.getLogger("edream.stdlib").info("from stdlib")
    log.info("outside")
    lines = [json.loads(x) for x in capsys.readouterr().err.strip().splitlines()]
    inside, stdlib, outside = lines[-3:]
    assert inside["correlation_id"] == "abc123" and inside["topic"] == "flex.orders.v1" and inside["n"] == 2
    assert stdlib["correlation_id"] == "abc123"
    assert "correlation_id" not in outside


def test_correlation_id_travels_in_kafka_headers():
    h = headers_with("c1", [("x", b"1"), ("correlation_id", b"old")])
    assert h == [("x", b"1"), ("correlation_id", b"c1")]
    assert from_headers(h) == "c1"
    assert from_headers(None, fallback="event-9") == "event-9"
    assert len(from_headers([])) == 32


def test_first_line_of_an_error_without_a_message_is_its_type():
    from edream.logs import first_line

    assert first_line(TimeoutError()) == "TimeoutError"
    assert first_line(ValueError("bad\nmore")) == "bad"


def test_status_lag_of_a_timeout_without_a_message_is_reported_not_raised(monkeypatch):
    """`edream status` crashed with IndexError when the lag query timed out on a loaded machine (CI)."""
    import edream.dashboard.lag as lag
    from edream.settings import Settings
    from edream.stack import _worker_lag

    def timed_out(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise TimeoutError()

    monkeypatch.setattr(lag, "consumer_lag", timed_out)
    assert _worker_lag(Settings(), "127.0.0.1:1") == {"error": "TimeoutError"}
