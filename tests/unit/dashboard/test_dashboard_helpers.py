"""Pure helpers of the dashboard: rates, SSE framing, lag arithmetic, table overrides, portfolio sums."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edream.dashboard.grid import Grid, grid_sum
from edream.dashboard.lag import partition_lag
from edream.dashboard.panels.load import portfolio_sum
from edream.dashboard.rates import RateTracker
from edream.dashboard.sse import sse_comment, sse_event
from edream.dashboard.tables import DEFAULT_TABLES, table_names


def test_rates_from_successive_counter_snapshots():
    r = RateTracker()
    assert r.update({"a": 10}, 1_000) == {"a": 0.0}
    assert r.update({"a": 30, "b": 4}, 3_000) == {"a": 10.0, "b": 2.0}
    assert r.update({"a": 30, "b": 4}, 3_000) == {"a": 10.0, "b": 2.0}  # same ms: previous rates kept
    assert r.update({"a": 5, "b": 4}, 4_000) == {"a": 5.0, "b": 0.0}  # counter reset (restart) counts from 0


def test_sse_event_is_one_data_line_and_parses_back():
    msg = sse_event({"text": "two\nlines"}, event="snapshot", event_id="7", retry_ms=3000).decode()
    assert msg.endswith("\n\n")
    lines = msg.strip("\n").split("\n")
    assert lines[:3] == ["id: 7", "event: snapshot", "retry: 3000"]
    assert len(lines) == 4 and json.loads(lines[3][len("data: ") :]) == {"text": "two\nlines"}
    assert sse_comment() == b": keep-alive\n\n"


def test_partition_lag():
    assert partition_lag(high=100, committed=90) == 10
    assert partition_lag(high=100, committed=-1001) == 100  # nothing committed yet
    assert partition_lag(high=5, committed=9) == 0


def test_table_overrides_from_env_json():
    assert table_names("") == DEFAULT_TABLES
    assert table_names('{"forecasts": "fc_v2"}')["forecasts"] == "fc_v2"
    with pytest.raises(ValueError):
        table_names("[1, 2]")


@given(
    st.dictionaries(
        st.text(max_size=3), st.lists(st.tuples(st.integers(0, 20), st.integers(-5, 5)), max_size=6)
    )
)
def test_portfolio_sum_preserves_the_total(curves):
    per_entity = {k: [[t, float(y)] for t, y in v] for k, v in curves.items()}
    total = portfolio_sum(per_entity)
    assert [t for t, _ in total] == sorted({t for v in per_entity.values() for t, _ in v})
    assert sum(y for _, y in total) == pytest.approx(sum(y for v in per_entity.values() for _, y in v))


@given(
    st.dictionaries(
        st.sampled_from(["m1", "m2", "m3"]),
        st.lists(
            st.tuples(st.integers(0, 300_000), st.integers(-5_000, 5_000)),
            max_size=8,
            unique_by=lambda s: s[0],
        ),
    ),
    st.integers(1_000, 120_000),
)
def test_grid_sum_holds_each_meters_newest_fresh_reading(per_meter, stale_ms):
    grid = Grid.aligned(0, 300_000, 15_000)
    out = grid_sum({m: [(t, kw / 1000) for t, kw in s] for m, s in per_meter.items()}, grid, stale_ms)
    assert [t for t, _ in out.points] == list(range(0, 300_001, 15_000)) and out.meters == len(per_meter)
    for (t, total), n in zip(out.points, out.reporting, strict=True):
        fresh = [
            max(s)[1] / 1000
            for s in ([x for x in v if t - stale_ms <= x[0] <= t] for v in per_meter.values())
            if s
        ]
        assert n == len(fresh)
        assert total == (pytest.approx(sum(fresh), abs=1e-3) if fresh else None)


def test_grid_rejects_a_non_positive_step():
    with pytest.raises(ValueError, match="step"):
        Grid(0, 10, 0)
