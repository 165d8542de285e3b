from __future__ import annotations

import pytest

from streams.anchoring.windows import (
    AddResult,
    WindowBatch,
    WindowGrouper,
    WindowKey,
    dedupe_latest,
    period_label,
)
from tools.sim.settlements import SLOT_MS, T0_MS, synthetic_settlement


def test_window_id_round_trip():
    key = WindowKey.containing("FLEX", T0_MS + 123_456, SLOT_MS)
    assert key.start_ms == T0_MS and key.end_ms == T0_MS + SLOT_MS
    assert key.window_id.endswith("/15m") and key.window_id[:16].count(":") == 1
    assert WindowKey.parse("FLEX", key.window_id) == key
    hour = WindowKey.containing("MARKET", T0_MS, 3_600_000)
    assert WindowKey.parse("MARKET", hour.window_id) == hour
    with pytest.raises(ValueError):
        WindowKey.parse("FLEX", "2026-11-18T10:15Z/15x")


@pytest.mark.parametrize(
    ("ms", "label"), [(900_000, "15m"), (3_600_000, "1h"), (86_400_000, "1d"), (1500, "1500ms")]
)
def test_period_label(ms, label):
    assert period_label(ms) == label


def test_batch_keeps_latest_version_regardless_of_order():
    v1, v2 = synthetic_settlement(1, version=1), synthetic_settlement(1, version=2, amount_micro=7)
    a, b = WindowBatch(WindowKey("FLEX", 0, 1)), WindowBatch(WindowKey("FLEX", 0, 1))
    assert a.add(v1) and a.add(v2) and not a.add(v1)
    assert b.add(v2) and not b.add(v1) and not b.add(v2)
    assert a.records == b.records == [v2]
    assert dedupe_latest([v2, v1, v1]) == [v2]


def test_grouper_closes_by_event_time_and_reports_late():
    g = WindowGrouper(period_ms=SLOT_MS)  # grace = one period
    for i in range(3):
        assert g.add(synthetic_settlement(i, slot=0)) is AddResult.ADDED
    assert g.add(synthetic_settlement(0, slot=0)) is AddResult.DUPLICATE
    g.add(synthetic_settlement(0, kind="MARKET", slot=0))
    assert g.closed() == []  # watermark = end of slot 0 < end + grace
    g.add(synthetic_settlement(0, slot=1))  # watermark = end of slot 1 = end of slot 0 + grace
    (closed,) = g.closed()
    assert closed.key == WindowKey("FLEX", T0_MS, T0_MS + SLOT_MS) and len(closed) == 3
    assert g.add(synthetic_settlement(9, slot=0)) is AddResult.LATE
    assert g.closed() == []
    # the MARKET watermark did not move: its window stays open until flushed
    assert [(k.kind, k.start_ms) for k in g.open_windows] == [("FLEX", T0_MS + SLOT_MS), ("MARKET", T0_MS)]
    flushed = g.flush(until_ms=T0_MS + SLOT_MS)
    assert [b.key.kind for b in flushed] == ["MARKET"]
    assert len(g.flush()) == 1 and g.open_windows == []


def test_grouper_hourly_windows_merge_slots():
    g = WindowGrouper(period_ms=3_600_000, grace_ms=0)
    for slot in range(4):
        g.add(synthetic_settlement(0, slot=slot))
    (batch,) = g.flush()
    assert len(batch) == 4 and batch.key.window_id.endswith("/1h")
